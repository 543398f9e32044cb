use sea_orm_migration::{prelude::*, schema::*};

/// Client addresses from which a user has logged in successfully ("known clients"): a
/// login from one is not subject to the account's shared lockout, so guesses from
/// elsewhere cannot lock the owner out. In the database so every replica agrees; rows go
/// with their user.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KnownClients::Table)
                    .if_not_exists()
                    .col(integer(KnownClients::UserId))
                    // An IPv4 address or an IPv6 /64, as the failed-login counts key them.
                    .col(string_len(KnownClients::Address, 64))
                    // Unix seconds after which the address is unknown again.
                    .col(big_integer(KnownClients::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(KnownClients::UserId)
                            .col(KnownClients::Address),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_known_clients_user")
                            .from(KnownClients::Table, KnownClients::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Purging expired rows scans by expiry.
        manager
            .create_index(
                Index::create()
                    .name("idx_known_clients_expires_at")
                    .table(KnownClients::Table)
                    .col(KnownClients::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KnownClients::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum KnownClients {
    Table,
    UserId,
    Address,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
