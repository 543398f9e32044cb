//! The one error type of the HTTP layer and the FastAPI-shaped bodies it answers with.
//!
//! Every failure a client can see is a variant of [`Error`]; its response is
//! `{"detail": ...}` exactly as the FastAPI tutorial's app answers. Internal causes
//! (database, hashing pool) are logged in full and never shown to the client.

mod body;
mod response;

use std::marker::PhantomData;

use poem::http::StatusCode;
use poem_openapi::{
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
    ApiResponse,
};
use serde_json::Value;

pub use self::body::{
    AnyHttpError, AnyOAuthError, HttpError, HttpValidationError, OAuthError, OAuthErrorCode,
    ValidationError,
};
use crate::accounts::{AccountsError, GrantError};

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("incorrect username or password")]
    IncorrectCredentials,
    #[error("no bearer credentials")]
    NotAuthenticated,
    /// `required`: the operation's scopes, space separated, for the challenge.
    #[error("bearer token rejected")]
    InvalidToken { required: String },
    #[error("token lacks a required scope")]
    InsufficientScope { required: String },
    #[error("user is disabled")]
    InactiveUser,
    #[error("incorrect current password")]
    IncorrectPassword,
    /// An OAuth error of the refresh grant or of `/revoke`: 400 in RFC 6749 §5.2's shape.
    #[error("OAuth error {error:?}: {description}")]
    OAuth {
        error: OAuthErrorCode,
        description: String,
    },
    #[error("no such session")]
    SessionNotFound,
    #[error("request validation failed")]
    Validation(Vec<ValidationError>),
    #[error("request body too large")]
    BodyTooLarge,
    #[error("password hashing pool is saturated")]
    Busy,
    #[error("too many failed logins; retry in {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    #[error("client too slow sending the request body")]
    RequestTimeout,
    #[error("no such path")]
    NotFound,
    #[error("no such user")]
    UserNotFound,
    #[error("username already registered")]
    UserExists,
    #[error("the change would leave no enabled admin")]
    LastAdmin,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<AccountsError> for Error {
    fn from(e: AccountsError) -> Self {
        match e {
            AccountsError::IncorrectCredentials => Error::IncorrectCredentials,
            AccountsError::InvalidToken => Error::InvalidToken {
                required: String::new(),
            },
            AccountsError::InsufficientScope => Error::InsufficientScope {
                required: String::new(),
            },
            AccountsError::InactiveUser => Error::InactiveUser,
            AccountsError::IncorrectPassword => Error::IncorrectPassword,
            AccountsError::TooManyAttempts { retry_after } => {
                Error::TooManyAttempts { retry_after }
            }
            AccountsError::Busy => Error::Busy,
            AccountsError::Database(e) => Error::Database(e),
            AccountsError::UserExists(_) => Error::UserExists,
            AccountsError::NoSuchUser(_) => Error::UserNotFound,
            AccountsError::LastAdmin(_) => Error::LastAdmin,
            AccountsError::Invalid { field, message } => {
                Error::Validation(vec![ValidationError::value_error(field, &message)])
            }
            other @ (AccountsError::Hashing(_)
            | AccountsError::Token(_)
            | AccountsError::SigningKey(_)) => Error::Internal(other.to_string()),
        }
    }
}

impl From<GrantError> for Error {
    fn from(e: GrantError) -> Self {
        let error = match e {
            GrantError::InvalidGrant | GrantError::Reused => OAuthErrorCode::InvalidGrant,
            GrantError::InvalidScope => OAuthErrorCode::InvalidScope,
            GrantError::RefreshDisabled => OAuthErrorCode::UnsupportedGrantType,
        };
        Error::OAuth {
            error,
            description: e.to_string(),
        }
    }
}

impl Error {
    /// An `invalid_request` OAuth error saying what is wrong with the request.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Error::OAuth {
            error: OAuthErrorCode::InvalidRequest,
            description: description.into(),
        }
    }
}

impl Error {
    /// The body an operation answers with `status`, as an example for the OpenAPI
    /// document; a `login` (`/token`) checks a password, the other operations a bearer
    /// token or nothing; `creates` (a `POST`) makes something new.
    pub fn example_body(status: StatusCode, login: bool, creates: bool) -> Option<Value> {
        let error = match status {
            StatusCode::BAD_REQUEST if login => GrantError::InvalidGrant.into(),
            StatusCode::BAD_REQUEST => Error::InactiveUser,
            StatusCode::UNAUTHORIZED if login => Error::IncorrectCredentials,
            StatusCode::UNAUTHORIZED => Error::InvalidToken {
                required: String::new(),
            },
            StatusCode::REQUEST_TIMEOUT => Error::RequestTimeout,
            // Only the admin API documents these.
            StatusCode::NOT_FOUND => Error::UserNotFound,
            StatusCode::CONFLICT if creates => Error::UserExists,
            StatusCode::CONFLICT => Error::LastAdmin,
            StatusCode::PAYLOAD_TOO_LARGE => Error::BodyTooLarge,
            StatusCode::UNPROCESSABLE_ENTITY => {
                Error::Validation(vec![ValidationError::missing("username")])
            }
            StatusCode::TOO_MANY_REQUESTS => Error::TooManyAttempts { retry_after: 60 },
            StatusCode::SERVICE_UNAVAILABLE if login => Error::Busy,
            StatusCode::SERVICE_UNAVAILABLE => {
                Error::Database(sea_orm::DbErr::Custom(String::new()))
            }
            StatusCode::INTERNAL_SERVER_ERROR => Error::Internal(String::new()),
            _ => return None,
        };
        Some(error.body())
    }
}

/// The error statuses one operation can answer, each with what it means there, for the
/// OpenAPI document.
pub trait ErrorStatuses: Send + Sync + 'static {
    const STATUSES: &'static [(StatusCode, &'static str)];
    /// Whether the operation's 400 is an OAuth error ([`OAuthError`]), not `HTTPError`.
    const OAUTH_400: bool = false;
}

/// [`Error`] as returned by an operation whose possible statuses are `S`.
///
/// The variant decides the response; `S` only decides what the OpenAPI document
/// promises, so every operation documents exactly the statuses it can answer.
pub struct ApiError<S>(pub Error, PhantomData<fn() -> S>);

impl<S> From<Error> for ApiError<S> {
    fn from(error: Error) -> Self {
        Self(error, PhantomData)
    }
}

impl<S> From<AccountsError> for ApiError<S> {
    fn from(error: AccountsError) -> Self {
        Error::from(error).into()
    }
}

impl<S> From<ApiError<S>> for poem::Error {
    fn from(error: ApiError<S>) -> Self {
        error.0.into()
    }
}

impl<S: ErrorStatuses> ApiResponse for ApiError<S> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: S::STATUSES
                .iter()
                .map(|(status, description)| {
                    documented(
                        *status,
                        description,
                        error_schema::<S>(*status),
                        S::OAUTH_400,
                    )
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        HttpError::register(registry);
        HttpValidationError::register(registry);
        if S::OAUTH_400 {
            AnyOAuthError::register(registry);
        } else if validates::<S>() {
            AnyHttpError::register(registry);
        }
    }
}

/// Whether an operation answers 422 besides other errors.
fn validates<S: ErrorStatuses>() -> bool {
    S::STATUSES
        .iter()
        .any(|(status, _)| *status == StatusCode::UNPROCESSABLE_ENTITY)
        && S::STATUSES.len() > 1
}

/// The schema of an error status: one schema for all of them, see [`AnyHttpError`] and
/// [`AnyOAuthError`].
fn error_schema<S: ErrorStatuses>(status: StatusCode) -> MetaSchemaRef {
    if S::OAUTH_400 {
        AnyOAuthError::schema_ref()
    } else if validates::<S>() {
        AnyHttpError::schema_ref()
    } else if status == StatusCode::UNPROCESSABLE_ENTITY {
        HttpValidationError::schema_ref()
    } else {
        HttpError::schema_ref()
    }
}

/// An error status in the OpenAPI document: its body schema and the headers it carries.
fn documented(
    status: StatusCode,
    description: &'static str,
    schema: MetaSchemaRef,
    oauth_400: bool,
) -> MetaResponse {
    let header = match status {
        StatusCode::UNAUTHORIZED => Some((
            "WWW-Authenticate",
            "`Bearer` without a bearer token; `Bearer scope=\"<required>\", \
             error=\"invalid_token\"` for a rejected token; `Bearer scope=\"<required>\", \
             error=\"insufficient_scope\"` for a token without a required scope (`scope` \
             is left out where the operation requires none)",
        )),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
            Some(("Retry-After", "Seconds to wait before retrying"))
        }
        StatusCode::BAD_REQUEST if oauth_400 => Some(("Cache-Control", "`no-store`")),
        _ => None,
    };
    MetaResponse {
        description,
        status: Some(status.as_u16()),
        status_range: None,
        content: vec![MetaMediaType {
            content_type: "application/json",
            schema,
        }],
        headers: header
            .map(|(name, description)| MetaHeader {
                name: name.to_owned(),
                description: Some(description.to_owned()),
                required: true,
                deprecated: false,
                schema: String::schema_ref(),
            })
            .into_iter()
            .collect(),
    }
}
