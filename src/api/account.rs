//! The signed-in user's own account: `POST /users/me/password`, `GET /users/me/sessions/`
//! and `DELETE /users/me/sessions/{session_id}` (`PATCH /users/me/` is with `GET` in
//! `users`). All need the `me` scope: they act on the caller's account only.

use chrono::{DateTime, Utc};
use poem::{http::StatusCode, web::Data, Request};
use poem_openapi::{
    param::Path,
    payload::Json,
    types::{Example, Password},
    ApiResponse, Object, OpenApi,
};
use secrecy::SecretString;

use super::{
    client_addr::client_ip,
    error::{ApiError, Error, ErrorStatuses},
    json_body::JsonBody,
    security::{OAuth2PasswordBearer, Scope},
    AppState,
};
use crate::accounts::SessionInfo;

/// A password change.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PasswordChange {
    /// The password in use, to prove it is the user.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub current_password: Password,
    /// 1 to 1024 bytes.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub new_password: Password,
}

impl Example for PasswordChange {
    fn example() -> Self {
        Self {
            current_password: Password("my current password".to_owned()),
            new_password: Password("correct horse battery staple".to_owned()),
        }
    }
}

/// A live session: one password login and the tokens refreshed from it.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Session {
    /// Carried by the session's access tokens as `sid`.
    pub id: String,
    /// When the login happened.
    pub created_at: DateTime<Utc>,
    /// When a token of the session was last issued or used (to the minute).
    pub last_used_at: DateTime<Utc>,
    /// The client address of the login.
    #[oai(nullable)]
    pub client_address: Option<String>,
    /// The `User-Agent` of the login.
    #[oai(nullable)]
    pub user_agent: Option<String>,
    /// Whether the token of this request belongs to it.
    pub current: bool,
}

fn timestamp(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

impl From<SessionInfo> for Session {
    fn from(s: SessionInfo) -> Self {
        Self {
            id: s.id,
            created_at: timestamp(s.created_at),
            last_used_at: timestamp(s.last_used_at),
            client_address: s.client_addr,
            user_agent: s.user_agent,
            current: s.current,
        }
    }
}

impl Example for Session {
    fn example() -> Self {
        Self {
            id: "q1b0XnWf3a2uWvUo2fH2aA".to_owned(),
            created_at: timestamp(1_796_244_200),
            last_used_at: timestamp(1_796_246_000),
            client_address: Some("203.0.113.9".to_owned()),
            user_agent: Some("curl/8.5.0".to_owned()),
            current: true,
        }
    }
}

const INACTIVE: (StatusCode, &str) = (
    StatusCode::BAD_REQUEST,
    "Inactive user: the account is disabled",
);
const UNAUTHORIZED: (StatusCode, &str) = (
    StatusCode::UNAUTHORIZED,
    "Not authenticated (no bearer token); the token could not be validated (malformed, \
     expired, forged, revoked, or its session ended); or Not enough permissions (the token \
     lacks the `me` scope, or its user no longer holds it)",
);
const UNAVAILABLE: (StatusCode, &str) = (
    StatusCode::SERVICE_UNAVAILABLE,
    "Storage unavailable; retry later",
);
const INTERNAL: (StatusCode, &str) = (
    StatusCode::INTERNAL_SERVER_ERROR,
    "Internal Server Error; the cause is logged, never shown",
);

pub enum PasswordErrors {}
impl ErrorStatuses for PasswordErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "Incorrect password (`current_password` is wrong; counts as a failed login), or \
             Inactive user",
        ),
        UNAUTHORIZED,
        (
            StatusCode::REQUEST_TIMEOUT,
            "The request body did not arrive in time",
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body larger than 16 KiB",
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Error: a field is missing, empty, too long or of the wrong type",
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins for this account or from this address; retry after \
             `Retry-After` seconds",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage unavailable, or password hashing saturated; retry later",
        ),
        INTERNAL,
    ];
}

pub enum SessionsErrors {}
impl ErrorStatuses for SessionsErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] =
        &[INACTIVE, UNAUTHORIZED, UNAVAILABLE, INTERNAL];
}

pub enum SessionErrors {}
impl ErrorStatuses for SessionErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        INACTIVE,
        UNAUTHORIZED,
        (
            StatusCode::NOT_FOUND,
            "Session not found: no live session of the caller has this id",
        ),
        UNAVAILABLE,
        INTERNAL,
    ];
}

#[derive(ApiResponse)]
pub enum NoContentResponse {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum SessionsResponse {
    /// The caller's live sessions, most recently used first.
    #[oai(status = 200)]
    Ok(Json<Vec<Session>>),
}

#[derive(Default)]
pub struct MyPasswordApi;

#[OpenApi]
impl MyPasswordApi {
    /// Change the current user's password
    ///
    /// Needs the current password. On success every session and token of the user ends,
    /// this one's included: log in again with the new password. A wrong current password
    /// is 400 and counts as a failed login for the account and the client address.
    #[oai(
        path = "/users/me/password",
        method = "post",
        operation_id = "change_password_users_me_password_post"
    )]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        req: &Request,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
        body: JsonBody<PasswordChange>,
    ) -> Result<NoContentResponse, ApiError<PasswordErrors>> {
        let change = body.0;
        state
            .accounts
            .change_own_password(
                client_ip(req, &state.trusted_proxies),
                &auth.0,
                SecretString::from(change.current_password.0),
                SecretString::from(change.new_password.0),
            )
            .await?;
        Ok(NoContentResponse::NoContent)
    }
}

#[derive(Default)]
pub struct MySessionsApi;

#[OpenApi(prefix_path = "/users/me/sessions/")]
impl MySessionsApi {
    /// List the current user's sessions
    ///
    /// Each password login starts a session; refreshing keeps it. The one the bearer token
    /// belongs to is marked `current`.
    #[oai(
        path = "/",
        method = "get",
        operation_id = "read_own_sessions_users_me_sessions__get"
    )]
    async fn read_own_sessions(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
    ) -> Result<SessionsResponse, ApiError<SessionsErrors>> {
        let sessions = state
            .accounts
            .sessions(&auth.0, auth.1.session_id.as_deref())
            .await?;
        Ok(SessionsResponse::Ok(Json(
            sessions.into_iter().map(Session::from).collect(),
        )))
    }
}

#[derive(Default)]
pub struct MySessionApi;

#[OpenApi]
impl MySessionApi {
    /// End one of the current user's sessions
    ///
    /// Its refresh token and access tokens stop working at once, on every replica. Ending
    /// the current session logs this client out.
    #[oai(
        path = "/users/me/sessions/:session_id",
        method = "delete",
        operation_id = "end_own_session_users_me_sessions__session_id__delete"
    )]
    async fn end_own_session(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
        session_id: Path<String>,
    ) -> Result<NoContentResponse, ApiError<SessionErrors>> {
        if state.accounts.end_session(&auth.0, &session_id).await? {
            Ok(NoContentResponse::NoContent)
        } else {
            Err(Error::SessionNotFound.into())
        }
    }
}
