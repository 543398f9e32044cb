use sea_orm_migration::{prelude::*, schema::*};

/// A second factor: TOTP (RFC 6238) with recovery codes, and what a session knows of how
/// its user signed in.
///
/// - `totp_factors`: one row per user who has started or finished enrolling. `secret` is
///   the active factor's secret (base32; NULL while only an enrolment is pending);
///   `pending_secret` a new one awaiting its first code, kept apart so that enrolling
///   again never turns the active factor off before the new one is confirmed;
///   `last_used_step` the last 30-second step a code was accepted for, so no code of it
///   or of an earlier step is accepted again, on any replica.
/// - `totp_recovery_codes`: each code's keyed hash; `used_at` once spent.
/// - `sessions.auth_time` and `sessions.amr`: when and how (RFC 8176 `pwd`, `pwd otp`)
///   the user signed in, carried by every token of the session, refreshed ones included.
///   Existing sessions signed in with a password when they started.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TotpFactors::Table)
                    .if_not_exists()
                    .col(integer(TotpFactors::UserId).primary_key())
                    .col(string_len_null(TotpFactors::Secret, 64))
                    // Unix seconds, as are the other times.
                    .col(big_integer_null(TotpFactors::EnabledAt))
                    .col(big_integer_null(TotpFactors::LastUsedStep))
                    .col(string_len_null(TotpFactors::PendingSecret, 64))
                    .col(big_integer_null(TotpFactors::PendingSince))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TotpFactors::Table, TotpFactors::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TotpRecoveryCodes::Table)
                    .if_not_exists()
                    .col(integer(TotpRecoveryCodes::UserId))
                    // HMAC-SHA256, hex.
                    .col(string_len(TotpRecoveryCodes::CodeHash, 64))
                    .col(big_integer_null(TotpRecoveryCodes::UsedAt))
                    .primary_key(
                        Index::create()
                            .col(TotpRecoveryCodes::UserId)
                            .col(TotpRecoveryCodes::CodeHash),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(TotpRecoveryCodes::Table, TotpRecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for column in [
            big_integer(Sessions::AuthTime).default(0).to_owned(),
            string_len(Sessions::Amr, 64).default("pwd").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared("UPDATE sessions SET auth_time = created_at")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Sessions::Amr, Sessions::AuthTime] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(TotpRecoveryCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TotpFactors::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TotpFactors {
    Table,
    UserId,
    Secret,
    EnabledAt,
    LastUsedStep,
    PendingSecret,
    PendingSince,
}

#[derive(DeriveIden)]
enum TotpRecoveryCodes {
    Table,
    UserId,
    CodeHash,
    UsedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    AuthTime,
    Amr,
}
