use sea_orm_migration::{prelude::*, schema::*};

/// Sessions and their refresh tokens (SPEC §7). A password login starts a session; its
/// access tokens carry the session id, and the bearer check joins the session with the
/// user in one query, so ending a session (deleting its row) refuses its tokens at once on
/// every replica. Refresh tokens are kept as SHA-256 hashes only, spent ones too, so a
/// spent token presented again is recognised and ends its session. Deleting a user or a
/// session deletes what hangs from it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    // 128 random bits, base64url: 22 characters.
                    .col(string_len(Sessions::Id, 32).primary_key())
                    .col(integer(Sessions::UserId))
                    // The scopes granted at login: a refresh may ask for fewer, never more.
                    .col(string_len(Sessions::Scope, 1024))
                    // Rotations so far: the current refresh token is derived from it.
                    .col(big_integer(Sessions::Generation))
                    // Unix seconds.
                    .col(big_integer(Sessions::CreatedAt))
                    .col(big_integer(Sessions::LastUsedAt))
                    .col(big_integer(Sessions::ExpiresAt))
                    .col(string_len_null(Sessions::ClientAddr, 64))
                    .col(string_len_null(Sessions::UserAgent, 256))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Listing, bounding and ending a user's sessions go by user.
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_id")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_expires_at")
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .if_not_exists()
                    // SHA-256 of the token, hex.
                    .col(string_len(RefreshTokens::TokenHash, 64).primary_key())
                    .col(string_len(RefreshTokens::SessionId, 32))
                    .col(big_integer(RefreshTokens::Generation))
                    .col(big_integer(RefreshTokens::ExpiresAt))
                    // Unix seconds when it was exchanged; NULL while it is the current one.
                    .col(big_integer_null(RefreshTokens::SpentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_session_id")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_expires_at")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    Scope,
    Generation,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    ClientAddr,
    UserAgent,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    SessionId,
    Generation,
    ExpiresAt,
    SpentAt,
}
