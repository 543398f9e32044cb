//! `POST /token`: the OAuth2 password grant.

use std::net::IpAddr;

use poem::{http::StatusCode, web::Data, Request};
use poem_openapi::{payload::Json, types::Example, ApiResponse, Object, OpenApi};
use secrecy::SecretString;

use super::{
    client_addr::{address_key, client_ip},
    form::OAuth2PasswordRequestForm,
};
use crate::{
    app::AppState,
    auth::{
        password::{HashSlot, Verification, DUMMY_HASH},
        throttle,
        token::unix_now,
    },
    db::{
        self,
        login_failure::{self, Scope},
        user,
    },
    error::{ApiError, Error, ErrorStatuses},
};

/// An access token for the `Authorization: Bearer` header.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Token {
    /// A signed HS256 JWT.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl Example for Token {
    fn example() -> Self {
        Token {
            access_token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqb2huZG9lIiwiZXhwIjoxNzk2MjQ2MDAwLCJpYXQiOjE3OTYyNDQyMDAsInZlciI6MH0.c2lnbmF0dXJl".to_owned(),
            token_type: "bearer".to_owned(),
            expires_in: 1800,
        }
    }
}

#[derive(ApiResponse)]
pub enum TokenResponse {
    /// Access token issued. Not to be cached (RFC 6749 §5.1).
    #[oai(status = 200)]
    Ok(
        Json<Token>,
        /// `no-store`
        #[oai(header = "Cache-Control")]
        String,
        /// `no-cache`
        #[oai(header = "Pragma")]
        String,
    ),
}

pub enum LoginErrors {}

impl ErrorStatuses for LoginErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (StatusCode::UNAUTHORIZED, "Incorrect username or password"),
        (StatusCode::REQUEST_TIMEOUT, "The request body did not arrive in time"),
        (StatusCode::PAYLOAD_TOO_LARGE, "Request body larger than 16 KiB"),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Error: a field is missing, empty or too long, or `grant_type` is not `password`",
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins for this username or from this address; no password is checked until `Retry-After` seconds have passed",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Server busy (password hashing saturated) or storage unavailable; retry later",
        ),
        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error; the cause is logged, never shown"),
    ];
}

pub struct TokenApi;

#[OpenApi]
impl TokenApi {
    /// Log in for an access token
    ///
    /// The OAuth2 password grant: send `username` and `password` as a form, get a bearer
    /// token to put in `Authorization: Bearer <access_token>`. `grant_type`, when sent,
    /// must be `password`; `scope`, `client_id` and `client_secret` are accepted and ignored.
    /// After too many failed logins for a username or from an address, the answer is 429
    /// until the `Retry-After` seconds have passed, whatever the password.
    #[oai(
        path = "/token",
        method = "post",
        operation_id = "login_for_access_token_token_post"
    )]
    async fn login_for_access_token(
        &self,
        state: Data<&AppState>,
        req: &Request,
        form: OAuth2PasswordRequestForm,
    ) -> Result<TokenResponse, ApiError<LoginErrors>> {
        let client = client_ip(req, &state.trusted_proxies);
        let user = throttled_authenticate(&state, client, &form.username, form.password).await?;
        let access_token = state
            .tokens
            .issue_access_token(&user.username, user.token_version, unix_now())
            .map_err(|e| Error::Internal(format!("issuing a token: {e}")))?;
        let token = Token {
            access_token,
            token_type: "bearer".to_owned(),
            expires_in: state.tokens.lifetime_secs(),
        };
        Ok(TokenResponse::Ok(
            Json(token),
            "no-store".to_owned(),
            "no-cache".to_owned(),
        ))
    }
}

/// [`authenticate`], unless the account or the client address has failed too often.
///
/// The limit is checked before any hash is computed, and answers the same whether the
/// username exists or not, so it neither costs CPU nor tells which accounts exist.
async fn throttled_authenticate(
    state: &AppState,
    client: Option<IpAddr>,
    username: &str,
    password: SecretString,
) -> Result<user::Model, Error> {
    // First, before any database work: a saturated pool must refuse cheaply.
    let slot = state.hasher.try_reserve()?;
    let limits = &state.login_limits;
    let account = account_key(username);
    // Only a non-TCP transport has no peer address; they all count as one client.
    let address = client.map_or_else(|| "unknown".to_owned(), address_key);
    let now = throttle::now();
    let (account_window, address_window) =
        login_failure::windows(&state.db, &account, &address).await?;
    let retry_after = limits
        .per_account
        .retry_after(account_window, now)
        .max(limits.per_address.retry_after(address_window, now));
    if let Some(retry_after) = retry_after {
        tracing::info!(user = %username, address = %address, "login refused: too many failures");
        return Err(Error::TooManyAttempts { retry_after });
    }
    match authenticate(state, slot, username, password).await {
        Err(Error::IncorrectCredentials) => {
            let now = throttle::now();
            for (scope, subject, limit) in [
                (Scope::Account, &account, limits.per_account),
                (Scope::Address, &address, limits.per_address),
            ] {
                login_failure::record_failure(
                    &state.db,
                    scope,
                    subject,
                    now,
                    limit.open_since(now),
                )
                .await?;
            }
            Err(Error::IncorrectCredentials)
        }
        Ok(user) => {
            if account_window.is_some() {
                login_failure::clear(&state.db, Scope::Account, &account).await?;
            }
            Ok(user)
        }
        Err(other) => Err(other),
    }
}

/// The account a login is counted against: the username as sent (usernames are
/// case-sensitive), with NUL, which PostgreSQL text cannot hold, replaced.
fn account_key(username: &str) -> String {
    username.replace('\0', "\u{fffd}")
}

/// The user if `password` is theirs.
///
/// Unknown usernames take the same path at the same cost as wrong passwords: they are
/// verified against [`DUMMY_HASH`], so neither the answer nor its timing tells an
/// attacker which usernames exist.
async fn authenticate(
    state: &AppState,
    slot: HashSlot,
    username: &str,
    password: SecretString,
) -> Result<user::Model, Error> {
    let user = db::find_user(&state.db, username).await?;
    let stored = user
        .as_ref()
        .map_or(DUMMY_HASH, |u| u.hashed_password.as_str())
        .to_owned();
    let verification = slot.verify(password, stored).await?;
    let (Some(user), Verification::Match { rehash }) = (user, verification) else {
        return Err(Error::IncorrectCredentials);
    };
    if let Some(new_hash) = rehash {
        // Best effort: the login succeeded either way, and the next one retries.
        if let Err(e) =
            db::upgrade_password_hash(&state.db, user.id, &user.hashed_password, new_hash).await
        {
            tracing::warn!(error = %e, user = %user.username, "could not upgrade password hash");
        } else {
            tracing::info!(user = %user.username, "upgraded outdated password hash");
        }
    }
    Ok(user)
}
