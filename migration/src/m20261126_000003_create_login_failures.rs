use sea_orm_migration::{prelude::*, schema::*};

/// Failed-login counters, one fixed window per account and per client address. In the
/// database, not in memory, so replicas sharing it enforce one limit together.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginFailures::Table)
                    .if_not_exists()
                    // `account` or `address`.
                    .col(string_len(LoginFailures::Scope, 16))
                    // A username (at most 128 characters) or an IP address / prefix.
                    .col(string_len(LoginFailures::Subject, 160))
                    // Unix seconds when the window opened.
                    .col(big_integer(LoginFailures::WindowStart))
                    .col(big_integer(LoginFailures::Failures))
                    .primary_key(
                        Index::create()
                            .col(LoginFailures::Scope)
                            .col(LoginFailures::Subject),
                    )
                    .to_owned(),
            )
            .await?;
        // Purging expired windows scans by start time.
        manager
            .create_index(
                Index::create()
                    .name("idx_login_failures_window_start")
                    .table(LoginFailures::Table)
                    .col(LoginFailures::WindowStart)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginFailures::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Scope,
    Subject,
    WindowStart,
    Failures,
}
