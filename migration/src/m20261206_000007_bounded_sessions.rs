use sea_orm_migration::{prelude::*, schema::*};

/// Sessions that a raced login cannot keep alive, and refresh storage that does not grow.
///
/// - `sessions.token_version`: the user's `token_version` when the session started. A
///   session behind its user's version is dead for the refresh grant and the bearer check
///   alike, so a login whose password check raced a password change, a disable or a
///   revoke never yields a live session. Existing sessions take their user's version now.
/// - `sessions.seq`: the session's place among its user's logins (1, 2, ...), unique per
///   user, so `MAX_SESSIONS_PER_USER` always ends the oldest. Existing sessions are
///   numbered by when they started.
/// - `sessions.rotated_at`: when the current refresh token was issued by a rotation; only
///   the one before it may be presented again within the reuse interval.
/// - Refresh tokens now carry their session and rotation count under a MAC, and the
///   server keeps only the session's count, so nothing is written per refresh. The old
///   `refresh_tokens` table becomes `legacy_refresh_tokens`: never written again, it still
///   recognises the tokens issued before this migration (the current one rotates, a spent
///   one ends its session) until they expire and are purged.
///
/// `down` restores the old columns and table; a session refreshed since `up` has no row
/// for its current token there, so after a downgrade it lives only until its access token
/// expires.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            big_integer(Sessions::TokenVersion).default(0).to_owned(),
            big_integer(Sessions::Seq).default(0).to_owned(),
            big_integer_null(Sessions::RotatedAt).to_owned(),
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
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE sessions SET token_version = \
               (SELECT users.token_version FROM users WHERE users.id = sessions.user_id)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE sessions SET seq = \
               (SELECT COUNT(*) FROM sessions AS earlier \
                 WHERE earlier.user_id = sessions.user_id \
                   AND (earlier.created_at < sessions.created_at \
                        OR (earlier.created_at = sessions.created_at AND earlier.id <= sessions.id)))",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE sessions SET rotated_at = \
               (SELECT MAX(refresh_tokens.spent_at) FROM refresh_tokens \
                 WHERE refresh_tokens.session_id = sessions.id \
                   AND refresh_tokens.generation = sessions.generation - 1)",
        )
        .await?;
        // The unique index serves every lookup by user that the old index did.
        manager
            .drop_index(
                Index::drop()
                    .name("idx_sessions_user_id")
                    .table(Sessions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_id_seq")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .col(Sessions::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .rename_table(
                Table::rename()
                    .table(RefreshTokens::Table, LegacyRefreshTokens::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .rename_table(
                Table::rename()
                    .table(LegacyRefreshTokens::Table, RefreshTokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_sessions_user_id_seq")
                    .table(Sessions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_id")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;
        for column in [Sessions::RotatedAt, Sessions::Seq, Sessions::TokenVersion] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    UserId,
    TokenVersion,
    Seq,
    RotatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
}

#[derive(DeriveIden)]
enum LegacyRefreshTokens {
    Table,
}
