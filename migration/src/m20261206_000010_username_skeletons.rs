use sea_orm_migration::{prelude::*, schema::*};

/// Each user's look-alike key: the SHA-256 (hex) of the Unicode TR39 confusable skeleton
/// of the case-folded username, under a UNIQUE index, so the database itself refuses the
/// second of two look-alike names however their creations race, on any number of
/// replicas. Nullable: the server records the keys of the users that exist before this
/// migration when it starts (the skeleton is the application's rule, not the schema's),
/// and a user whose name looks like an older user's keeps working without one.
#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_users_username_skeleton";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Column and index apart: SQLite cannot add a UNIQUE column to a table.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_len_null(Users::UsernameSkeleton, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Users::Table)
                    .col(Users::UsernameSkeleton)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The index first: SQLite cannot drop an indexed column.
        manager
            .drop_index(Index::drop().name(INDEX).table(Users::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::UsernameSkeleton)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    UsernameSkeleton,
}
