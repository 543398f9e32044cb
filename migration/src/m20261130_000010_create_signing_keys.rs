use sea_orm_migration::{prelude::*, schema::*};

/// The Ed25519 keys that sign access tokens when `JWT_ALGORITHM=EdDSA`, one row per
/// generation: generation 1 is made at the first start, `gatehouse keys rotate` adds the
/// next. The primary key on `generation` lets replicas starting together, or two rotations
/// racing, insert-if-absent and agree on one key per generation.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .if_not_exists()
                    .col(integer(SigningKeys::Generation).primary_key())
                    .col(string_len(SigningKeys::Kid, 64).unique_key())
                    .col(string_len(SigningKeys::Algorithm, 16))
                    .col(string(SigningKeys::PrivateKey))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone(SigningKeys::SignsFrom))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Generation,
    Kid,
    Algorithm,
    PrivateKey,
    CreatedAt,
    SignsFrom,
}
