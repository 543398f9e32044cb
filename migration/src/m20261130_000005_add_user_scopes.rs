use sea_orm_migration::{prelude::*, schema::*};

/// The scopes each user holds, space separated (`me items`), on the user's own row: the
/// bearer check reads them with the user on every request, in the same single query.
/// Users that exist before this migration hold `me items`, what the JWT chapter's
/// operations need, so nothing they could do before stops working.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// What every user held before scopes existed.
const EXISTING_USERS_SCOPES: &str = "me items";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_len(Users::Scopes, 1024).default(EXISTING_USERS_SCOPES))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::Scopes)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Scopes,
}
