//! What the OpenAPI document says about errors: [`ErrorStatuses`] lists the statuses one
//! operation answers, [`ApiError<S>`] returns an [`Error`] while documenting exactly those,
//! each with its body's schema, its headers and an example body.

use std::marker::PhantomData;

use poem::http::StatusCode;
use poem_openapi::{
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
    ApiResponse,
};
use serde_json::Value;

use super::{AnyHttpError, AnyOAuthError, Error, HttpError, HttpValidationError, ValidationError};
use crate::{
    accounts::{AccountsError, GrantError},
    auth::password_policy::PolicyViolation,
};

impl Error {
    /// The body `operation_id` answers with `status`, as an example for the OpenAPI
    /// document, where the status alone does not tell it (signup, verification, reset);
    /// `None`: see [`Self::example_body`].
    pub fn operation_example_body(operation_id: &str, status: StatusCode) -> Option<Value> {
        if operation_id.contains("_admin_clients_") {
            let error = match status {
                StatusCode::NOT_FOUND => Error::ClientNotFound,
                StatusCode::UNPROCESSABLE_ENTITY => {
                    Error::Validation(vec![ValidationError::value_error(
                        "redirect_uris",
                        "\"http://app.example/callback\" must use https; http only on a \
                         loopback host (127.0.0.1, [::1], localhost)",
                    )])
                }
                _ => return None,
            };
            return Some(error.body());
        }
        let accounts = [
            "register_users__post",
            "verify_email_verify_email_post",
            "request_verify_token_request_verify_token_post",
            "forgot_password_forgot_password_post",
            "reset_password_reset_password_post",
        ];
        if !accounts.contains(&operation_id) {
            return None;
        }
        let error = match status {
            StatusCode::BAD_REQUEST if operation_id == accounts[0] => {
                Error::AlreadyRegistered { email: false }
            }
            StatusCode::BAD_REQUEST => Error::InvalidEmailToken,
            StatusCode::FORBIDDEN => Error::SignupClosed,
            StatusCode::UNPROCESSABLE_ENTITY => Error::Validation(vec![match operation_id {
                "verify_email_verify_email_post" => ValidationError::missing("token"),
                "request_verify_token_request_verify_token_post"
                | "forgot_password_forgot_password_post" => ValidationError::missing("email"),
                _ => {
                    ValidationError::weak_password("password", PolicyViolation::TooShort { min: 8 })
                }
            }]),
            StatusCode::TOO_MANY_REQUESTS => Error::TooManySignups { retry_after: 3600 },
            StatusCode::SERVICE_UNAVAILABLE if operation_id != accounts[1] => {
                Error::MailNotConfigured
            }
            _ => return None,
        };
        Some(error.body())
    }

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
    /// Whether the operation's 400 is an OAuth error ([`OAuthError`](super::OAuthError)), not `HTTPError`.
    const OAUTH_400: bool = false;
}

/// Rows that many operations' [`ErrorStatuses::STATUSES`] share, word for word.
pub const REQUEST_TIMEOUT: (StatusCode, &str) = (
    StatusCode::REQUEST_TIMEOUT,
    "The request body did not arrive in time",
);
pub const BODY_TOO_LARGE: (StatusCode, &str) = (
    StatusCode::PAYLOAD_TOO_LARGE,
    "Request body larger than 16 KiB",
);
pub const STORAGE_UNAVAILABLE: (StatusCode, &str) = (
    StatusCode::SERVICE_UNAVAILABLE,
    "Storage unavailable; retry later",
);
pub const INTERNAL_ERROR: (StatusCode, &str) = (
    StatusCode::INTERNAL_SERVER_ERROR,
    "Internal Server Error; the cause is logged, never shown",
);

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
