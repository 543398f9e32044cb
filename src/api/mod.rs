//! The HTTP API: one poem-openapi service gives the routes, the bearer extraction, the
//! OpenAPI document and the documentation pages.

pub mod account;
pub mod admin;
pub mod admin_clients;
pub mod assets;
pub mod auth;
pub mod authorize;
pub mod client_addr;
pub mod docs;
pub mod error;
pub mod form;
pub mod health;
pub mod introspect;
pub mod json_body;
pub mod json_or_form;
pub mod pages;
pub mod password_reset;
pub mod revoke;
pub mod routing;
pub mod security;
pub mod service_url;
pub mod signup;
pub mod token_form;
pub mod totp;
pub mod userinfo;
pub mod users;
pub mod verification;
pub mod well_known;

/// "Adding your own protected operation" of docs/architecture.md, and its test.
#[cfg(test)]
mod readme_example;
#[cfg(test)]
mod reports;

use std::{sync::Arc, time::Duration};

use ipnet::IpNet;
use poem::Request;
use poem_openapi::OpenApiService;

use self::error::Error;
use crate::{
    accounts::Accounts,
    config::{PublicUrl, Settings},
    metrics::Metrics,
};

/// What every request handler may use.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Accounts,
    /// How long a client may take to send a request body.
    pub client_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[IpNet]>,
    /// How long resource servers may cache the JWKS.
    pub jwks_max_age: Duration,
    /// `PUBLIC_URL`: where the URLs the service names start (see [`service_url`]).
    pub public_url: Option<PublicUrl>,
    /// `JWT_ISSUER`: the issuer the metadata names.
    pub jwt_issuer: Option<String>,
    /// `ROOT_PATH`, for URLs built from the request's origin.
    pub root_path: Arc<str>,
    /// What `/metrics` reports.
    pub metrics: Metrics,
}

impl AppState {
    /// The state of a server configured by `settings`, answering through `accounts`: the
    /// one way to make it, for the app and the tests alike.
    pub fn new(accounts: Accounts, settings: &Settings) -> Self {
        Self {
            accounts,
            client_timeout: settings.client_timeout(),
            trusted_proxies: settings.trusted_proxies.clone().into(),
            jwks_max_age: settings.jwks_max_age(),
            public_url: settings.public_url.clone(),
            jwt_issuer: settings.jwt_issuer.clone(),
            root_path: settings.root_path.as_str().into(),
            metrics: Metrics::new(),
        }
    }

    /// [`Self::new`] on `db` for the API's own tests: the default settings, HS256 tokens
    /// under a fixed test secret, one hashing thread.
    #[cfg(test)]
    pub(crate) fn for_tests(db: crate::db::Db) -> Self {
        use crate::auth::{
            hashing_pool::PasswordHasher,
            recovery_code::RecoveryCodeKey,
            refresh_token::RefreshTokenKey,
            server_secret::ServerSecret,
            token::{TokenAuthority, TokenSettings},
        };
        // Its database URL is not used: `db` is the database.
        let settings = &Settings::for_database(crate::db::DEFAULT_DATABASE_URL);
        let secret = ServerSecret::new(vec![7; 32]).expect("32 bytes make a valid secret");
        let token_settings = TokenSettings {
            lifetime: settings.token_lifetime(),
            ..TokenSettings::default()
        };
        let accounts = Accounts::new(
            db,
            TokenAuthority::new(&secret, token_settings),
            PasswordHasher::new(1, 4).expect("a hashing thread starts"),
            settings.login_limits(),
            settings.default_scopes,
            settings.session_rules(RefreshTokenKey::new(&secret)),
            settings.second_factor_rules(RecoveryCodeKey::new(&secret)),
        );
        Self::new(accounts, settings)
    }
}

/// The state the route table attaches to every request, for extractors that run before
/// a handler's `Data` parameter would.
fn app_state(req: &Request) -> Result<&AppState, Error> {
    req.data::<AppState>()
        .ok_or_else(|| Error::Internal("application state is not attached".to_owned()))
}

/// Every operation of gatehouse: the document, the routes and the route table are all
/// built from this one list.
pub type Api = (
    auth::TokenApi,
    revoke::RevokeApi,
    users::MeApi,
    users::MyItemsApi,
    users::StatusApi,
    account::MyPasswordApi,
    account::MySessionsApi,
    (account::MySessionApi, totp::MyTotpApi),
    (
        admin::AdminUsersApi,
        admin::AdminUserApi,
        admin_clients::AdminClientsApi,
        admin_clients::AdminClientApi,
    ),
    health::HealthApi,
    // Nested: `Default` (and so `Api::default()`) exists for tuples of up to 12.
    (
        well_known::WellKnownApi,
        introspect::IntrospectApi,
        authorize::AuthorizeApi,
        userinfo::UserInfoApi,
    ),
    (
        signup::SignupApi,
        verification::VerifyEmailApi,
        password_reset::PasswordResetApi,
    ),
);

pub fn service() -> OpenApiService<Api, ()> {
    OpenApiService::new(Api::default(), "gatehouse", env!("CARGO_PKG_VERSION"))
        .license(env!("CARGO_PKG_LICENSE"))
        .description(
            "OAuth2 password flow with JWT bearer tokens, compatible with the FastAPI tutorial \
         \"OAuth2 with Password (and hashing), Bearer with JWT tokens\". Every error body is \
         `{\"detail\": ...}`.",
        )
}
