//! `POST /users/`: signup, when `SIGNUP=open` (fastapi-users' register router, answering
//! the tutorial's `User`).

use poem::{http::StatusCode, web::Data, Request};
use poem_openapi::{
    payload::Json,
    types::{Example, Password},
    ApiResponse, Object, OpenApi,
};
use secrecy::SecretString;

use super::{client_addr::client_ip, json_body::JsonBody, users::User, AppState};
use crate::{
    accounts::{AccountsError, Signup},
    api::error::{ApiError, Error, ErrorStatuses},
};

/// A person signing up.
#[derive(Debug, Object)]
#[oai(example)]
pub struct UserCreate {
    /// 1 to 128 characters. Stored width-mapped and in NFC (RFC 8265's
    /// UsernameCasePreserved); no spaces, control, invisible or direction characters.
    /// Unique: a name that looks like an existing one is already registered.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub username: String,
    /// An address mail can be sent to; unique, compared case-insensitively. A mail with a
    /// verification link goes to it.
    #[oai(validator(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub email: String,
    /// At least `PASSWORD_MIN_LENGTH` characters (default 8), at most 1024 bytes, and not
    /// one of the most common passwords.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: Password,
    #[oai(
        nullable,
        validator(max_length = 256, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub full_name: Option<String>,
}

impl Example for UserCreate {
    fn example() -> Self {
        UserCreate {
            username: "carol".to_owned(),
            email: "carol@example.com".to_owned(),
            password: Password("correct horse battery staple".to_owned()),
            full_name: Some("Carol Cooper".to_owned()),
        }
    }
}

pub enum SignupErrors {}
impl ErrorStatuses for SignupErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "Username already registered, or Email already registered (another user has the \
             address, compared case-insensitively)",
        ),
        (StatusCode::FORBIDDEN, "Signup is closed (`SIGNUP=closed`)"),
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
            "Validation Error: a field is missing, of the wrong type or too long; the \
             username has a refused character; the address is not one mail can be sent to; \
             or the password is too short (`string_too_short`) or too common",
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many signups from this address; retry after `Retry-After` seconds",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Mail is not configured (no `SMTP_URL`); storage unavailable, or password \
             hashing saturated; retry later",
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error; the cause is logged, never shown",
        ),
    ];
}

#[derive(ApiResponse)]
pub enum SignupResponse {
    /// The user was created; a mail with a verification link is on its way.
    #[oai(status = 201)]
    Created(Json<User>),
}

/// A taken name or address, as signup answers it (400, like fastapi-users' register).
pub(super) fn already_registered(e: AccountsError) -> Error {
    match e {
        AccountsError::UserExists(_) => Error::AlreadyRegistered { email: false },
        AccountsError::EmailExists(_) => Error::AlreadyRegistered { email: true },
        other => other.into(),
    }
}

#[derive(Default)]
pub struct SignupApi;

#[OpenApi(prefix_path = "/users/")]
impl SignupApi {
    /// Sign up
    ///
    /// Creates an account holding the scopes `me items`, when the server allows signup
    /// (`SIGNUP=open`). A mail with a link to verify the address goes to `email`.
    /// Signups are limited per client address.
    #[oai(path = "/", method = "post", operation_id = "register_users__post")]
    async fn register(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: JsonBody<UserCreate>,
    ) -> Result<SignupResponse, ApiError<SignupErrors>> {
        let new = body.0;
        let signup = Signup {
            username: new.username,
            email: new.email,
            password: SecretString::from(new.password.0),
            full_name: new.full_name,
        };
        let user = state
            .accounts
            .sign_up(client_ip(req, &state.trusted_proxies), signup)
            .await
            .map_err(already_registered)?;
        Ok(SignupResponse::Created(Json(user.into())))
    }
}
