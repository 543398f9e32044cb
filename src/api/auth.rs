//! `POST /token`: the OAuth2 password grant.

use poem::{http::StatusCode, web::Data, Request};
use poem_openapi::{payload::Json, types::Example, ApiResponse, Object, OpenApi};

use super::{client_addr::client_ip, form::OAuth2PasswordRequestForm, AppState};
use crate::error::{ApiError, ErrorStatuses};

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
    /// The scopes granted, space separated (RFC 6749 §3.3): the requested ones the user
    /// holds.
    pub scope: String,
}

impl Example for Token {
    fn example() -> Self {
        Token {
            access_token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqb2huZG9lIiwiZXhwIjoxNzk2MjQ2MDAwLCJpYXQiOjE3OTYyNDQyMDAsInZlciI6MH0.c2lnbmF0dXJl".to_owned(),
            token_type: "bearer".to_owned(),
            expires_in: 1800,
            scope: "me items".to_owned(),
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

#[derive(Default)]
pub struct TokenApi;

#[OpenApi]
impl TokenApi {
    /// Log in for an access token
    ///
    /// The OAuth2 password grant: send `username` and `password` as a form, get a bearer
    /// token to put in `Authorization: Bearer <access_token>`. `grant_type`, when sent,
    /// must be `password`; `scope` lists the scopes wanted, space separated: the token gets
    /// those the user holds (unknown ones are left out), and without `scope` the
    /// configured `DEFAULT_SCOPES`, else every scope the user holds. `client_id` and
    /// `client_secret` are accepted and ignored.
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
        let login = state
            .accounts
            .login(client, &form.username, form.password, &form.scopes)
            .await?;
        let token = Token {
            access_token: login.access_token,
            token_type: "bearer".to_owned(),
            expires_in: login.expires_in,
            scope: login.scope.to_string(),
        };
        Ok(TokenResponse::Ok(
            Json(token),
            "no-store".to_owned(),
            "no-cache".to_owned(),
        ))
    }
}
