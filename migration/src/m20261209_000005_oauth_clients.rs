use sea_orm_migration::{prelude::*, schema::*};

/// The OAuth clients of "Sign in with gatehouse" (the authorization-code flow), one row
/// each, registered by an admin:
///
/// - `client_id`: 128 random bits, base64url;
/// - `secret_hash`: the SHA-256 of a confidential client's secret; `NULL` for a public
///   client, which authenticates with PKCE alone;
/// - `redirect_uris`, `post_logout_redirect_uris`: JSON arrays of the URIs exactly as
///   registered (the flow compares them exactly);
/// - `scopes`: the scopes the client may ask for, space separated.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OauthClients::Table)
                    .col(string_len(OauthClients::ClientId, 64).primary_key())
                    .col(string(OauthClients::ClientName))
                    .col(string_len_null(OauthClients::SecretHash, 64))
                    .col(boolean(OauthClients::Confidential))
                    .col(boolean(OauthClients::FirstParty))
                    .col(text(OauthClients::RedirectUris))
                    .col(text(OauthClients::PostLogoutRedirectUris))
                    .col(string(OauthClients::Scopes))
                    .col(timestamp_with_time_zone(OauthClients::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OauthClients::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum OauthClients {
    Table,
    ClientId,
    ClientName,
    SecretHash,
    Confidential,
    FirstParty,
    RedirectUris,
    PostLogoutRedirectUris,
    Scopes,
    CreatedAt,
}
