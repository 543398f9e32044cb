use sea_orm_migration::{prelude::*, schema::*};

/// Sign in with gatehouse (the authorization-code flow and OpenID Connect):
///
/// - `browser_sessions`: a person signed in on the login page, for single sign-on; the
///   cookie's SHA-256 only, the user, their `token_version` then (a password change, a
///   disable or a revoke ends it), when and how they signed in, and its expiry.
/// - `authorization_codes`: codes of `GET /authorize`, SHA-256 only, each bound to its
///   client, redirect URI and PKCE challenge, with the grant it stands for; spent by a
///   conditional update (`spent_at`), with the session its exchange started (`session_id`)
///   and whether it was presented again (`reused`), so a second use ends that session.
///
/// The clients themselves are `oauth_clients` (m20261209_000005).
#[derive(DeriveMigrationName)]
pub struct Migration;

const CODES_EXPIRY_INDEX: &str = "idx_authorization_codes_expires_at";
const BROWSER_EXPIRY_INDEX: &str = "idx_browser_sessions_expires_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BrowserSessions::Table)
                    .col(string_len(BrowserSessions::IdHash, 64).primary_key())
                    .col(integer(BrowserSessions::UserId))
                    .col(big_integer(BrowserSessions::TokenVersion))
                    .col(big_integer(BrowserSessions::AuthTime))
                    .col(string_len(BrowserSessions::Amr, 32))
                    .col(big_integer(BrowserSessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BrowserSessions::Table, BrowserSessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(BROWSER_EXPIRY_INDEX)
                    .table(BrowserSessions::Table)
                    .col(BrowserSessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthorizationCodes::Table)
                    .col(string_len(AuthorizationCodes::CodeHash, 64).primary_key())
                    .col(string_len(AuthorizationCodes::ClientId, 64))
                    .col(integer(AuthorizationCodes::UserId))
                    .col(big_integer(AuthorizationCodes::TokenVersion))
                    .col(text(AuthorizationCodes::RedirectUri))
                    .col(string_len(AuthorizationCodes::CodeChallenge, 128))
                    .col(text(AuthorizationCodes::Scope))
                    .col(text_null(AuthorizationCodes::Nonce))
                    .col(big_integer(AuthorizationCodes::AuthTime))
                    .col(string_len(AuthorizationCodes::Amr, 32))
                    .col(big_integer(AuthorizationCodes::ExpiresAt))
                    .col(big_integer_null(AuthorizationCodes::SpentAt))
                    .col(string_len_null(AuthorizationCodes::SessionId, 64))
                    .col(boolean(AuthorizationCodes::Reused).default(false))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuthorizationCodes::Table, AuthorizationCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CODES_EXPIRY_INDEX)
                    .table(AuthorizationCodes::Table)
                    .col(AuthorizationCodes::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthorizationCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(BrowserSessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum BrowserSessions {
    Table,
    IdHash,
    UserId,
    TokenVersion,
    AuthTime,
    Amr,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    CodeHash,
    ClientId,
    UserId,
    TokenVersion,
    RedirectUri,
    CodeChallenge,
    Scope,
    Nonce,
    AuthTime,
    Amr,
    ExpiresAt,
    SpentAt,
    SessionId,
    Reused,
}
