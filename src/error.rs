//! The one error type of the HTTP layer and the FastAPI-shaped bodies it answers with.
//!
//! Every failure a client can see is a variant of [`Error`]; its response is
//! `{"detail": ...}` exactly as the FastAPI tutorial's app answers. Internal causes
//! (database, hashing pool) are logged in full and never shown to the client.

use std::marker::PhantomData;

use poem::{
    error::ResponseError,
    http::{header, HeaderValue, StatusCode},
    Body, Response,
};
use poem_openapi::{
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::{Example, ToJSON, Type},
    ApiResponse, Enum, Object, Union,
};
use serde_json::Value;

use crate::{
    accounts::{AccountsError, GrantError},
    auth::password_policy::PolicyViolation,
};

/// An error with a human-readable message.
#[derive(Debug, Clone, Object)]
#[oai(rename = "HTTPError", example)]
pub struct HttpError {
    pub detail: String,
}

impl Example for HttpError {
    fn example() -> Self {
        HttpError {
            detail: "Could not validate credentials".to_owned(),
        }
    }
}

/// One problem with the request, as pydantic reports it.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct ValidationError {
    /// Error kind, e.g. `missing`, `string_too_long`, `string_pattern_mismatch`.
    #[oai(rename = "type")]
    pub kind: String,
    /// Where the problem is: `["body", "<field>"]`.
    pub loc: Vec<String>,
    pub msg: String,
    /// The offending value (`null` when missing; masked for secrets).
    pub input: Value,
    #[oai(skip_serializing_if_is_none)]
    pub ctx: Option<Value>,
}

impl ValidationError {
    /// A required form field is absent or empty.
    pub fn missing(field: &str) -> Self {
        Self {
            kind: "missing".to_owned(),
            loc: body_loc(field),
            msg: "Field required".to_owned(),
            input: Value::Null,
            ctx: None,
        }
    }

    /// A form field is longer than `max_length` `unit`s (`characters` or `bytes`).
    pub fn too_long(field: &str, max_length: usize, unit: &str, input: Value) -> Self {
        Self {
            kind: "string_too_long".to_owned(),
            loc: body_loc(field),
            msg: format!("String should have at most {max_length} {unit}"),
            input,
            ctx: Some(serde_json::json!({ "max_length": max_length })),
        }
    }

    /// A value outside gatehouse's own limits (`message` says which), as pydantic reports
    /// a failed field validator.
    pub fn value_error(field: &str, message: &str) -> Self {
        Self {
            kind: "value_error".to_owned(),
            loc: body_loc(field),
            msg: format!("Value error, {message}"),
            input: Value::Null,
            ctx: Some(serde_json::json!({ "error": message })),
        }
    }

    /// `value` where pydantic wanted `expected` (`string`, `boolean`, `array`, `object`).
    pub fn wrong_type(loc: Vec<String>, expected: &str, input: Value) -> Self {
        let (kind, msg) = match expected {
            "string" => ("string_type", "Input should be a valid string"),
            "boolean" => ("bool_type", "Input should be a valid boolean"),
            "array" => ("list_type", "Input should be a valid list"),
            _ => (
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            ),
        };
        Self {
            kind: kind.to_owned(),
            loc,
            msg: msg.to_owned(),
            input,
            ctx: None,
        }
    }

    /// A string shorter than `min_length` characters.
    pub fn too_short(field: &str, min_length: usize, input: Value) -> Self {
        let unit = if min_length == 1 {
            "character"
        } else {
            "characters"
        };
        Self {
            kind: "string_too_short".to_owned(),
            loc: body_loc(field),
            msg: format!("String should have at least {min_length} {unit}"),
            input,
            ctx: Some(serde_json::json!({ "min_length": min_length })),
        }
    }

    /// `input` at `loc` is none of `allowed`, as pydantic reports an enum.
    pub fn not_in_enum(loc: Vec<String>, allowed: &[Value], input: Value) -> Self {
        let quoted: Vec<String> = allowed
            .iter()
            .map(|v| format!("'{}'", v.as_str().unwrap_or_default()))
            .collect();
        let expected = match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => quoted.join(""),
        };
        Self {
            kind: "enum".to_owned(),
            loc,
            msg: format!("Input should be {expected}"),
            input,
            ctx: Some(serde_json::json!({ "expected": expected })),
        }
    }

    /// A body that is not JSON.
    pub fn json_invalid(position: usize, error: &str) -> Self {
        Self {
            kind: "json_invalid".to_owned(),
            loc: vec!["body".to_owned(), position.to_string()],
            msg: "JSON decode error".to_owned(),
            input: serde_json::json!({}),
            ctx: Some(serde_json::json!({ "error": error })),
        }
    }

    /// A new password the policy refuses: too short or too long as pydantic reports
    /// lengths, or too common.
    pub fn weak_password(field: &str, violation: PolicyViolation) -> Self {
        let masked = || Value::String("**********".to_owned());
        match violation {
            PolicyViolation::TooShort { min } => Self::too_short(field, min, masked()),
            PolicyViolation::TooLong { max } => Self::too_long(field, max, "bytes", masked()),
            PolicyViolation::Common => Self::value_error(field, &violation.to_string()),
        }
    }

    /// A form field does not match `pattern`.
    pub fn pattern_mismatch(field: &str, pattern: &str, input: &str) -> Self {
        Self {
            kind: "string_pattern_mismatch".to_owned(),
            loc: body_loc(field),
            msg: format!("String should match pattern '{pattern}'"),
            input: Value::String(input.to_owned()),
            ctx: Some(serde_json::json!({ "pattern": pattern })),
        }
    }
}

/// `["body", field]`, or `["body"]` for the body as a whole (`field` empty).
fn body_loc(field: &str) -> Vec<String> {
    let mut loc = vec!["body".to_owned()];
    if !field.is_empty() {
        loc.push(field.to_owned());
    }
    loc
}

/// An OAuth 2.0 error code (RFC 6749 §5.2, RFC 7009 §2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "OAuthErrorCode", rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidGrant,
    InvalidScope,
    UnsupportedGrantType,
}

/// An OAuth 2.0 error (RFC 6749 §5.2): what the refresh grant and `/revoke` answer, so
/// OAuth client libraries understand it.
#[derive(Debug, Clone, Object)]
#[oai(rename = "OAuthError", example)]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    /// What went wrong, for the developer.
    pub error_description: String,
}

impl Example for OAuthError {
    fn example() -> Self {
        OAuthError {
            error: OAuthErrorCode::InvalidGrant,
            error_description: GrantError::InvalidGrant.to_string(),
        }
    }
}

/// The request did not validate.
#[derive(Debug, Clone, Object)]
#[oai(rename = "HTTPValidationError")]
pub struct HttpValidationError {
    pub detail: Vec<ValidationError>,
}

// An operation that validates its request documents every error status with this one
// schema, and the status's own body as its example: progenitor, the Rust generator,
// accepts only one error type per operation. The validation shape comes first: clients
// that try each shape in turn would take `{"detail": [...]}` for an `HTTPError` too.
/// An error body: `HTTPValidationError` for 422, `HTTPError` for every other status.
#[derive(Debug, Clone, Union)]
#[oai(rename = "HTTPErrorOrValidationError", one_of)]
pub enum AnyHttpError {
    Validation(HttpValidationError),
    Http(HttpError),
}

// The same for the operations that answer OAuth errors (`/token`, `/revoke`): their 400 is
// RFC 6749 §5.2's shape, the rest FastAPI's. The three shapes are told apart by their
// required fields (`error`; `detail` as a list or a string).
/// An error body: `OAuthError` for 400, `HTTPValidationError` for 422, `HTTPError` for
/// every other status.
#[derive(Debug, Clone, Union)]
#[oai(rename = "OAuthErrorOrHTTPError", one_of)]
pub enum AnyOAuthError {
    Validation(HttpValidationError),
    OAuth(OAuthError),
    Http(HttpError),
}

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
    #[error("email already registered")]
    EmailExists,
    #[error("the change would leave no enabled admin")]
    LastAdmin,
    /// Signup (or a profile change) with a username or address another user has: 400, as
    /// fastapi-users' register answers (the admin API answers 409, [`Error::UserExists`]).
    #[error("{} already registered", if *email { "email" } else { "username" })]
    AlreadyRegistered { email: bool },
    #[error("signup is closed")]
    SignupClosed,
    #[error("too many signups; retry in {retry_after} s")]
    TooManySignups { retry_after: u64 },
    #[error("mail is not configured")]
    MailNotConfigured,
    #[error("invalid or expired token")]
    InvalidEmailToken,
    #[error("email not verified")]
    EmailNotVerified,
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
            AccountsError::EmailExists(_) => Error::EmailExists,
            AccountsError::NoSuchUser(_) => Error::UserNotFound,
            AccountsError::LastAdmin(_) => Error::LastAdmin,
            AccountsError::Invalid { field, message } => {
                Error::Validation(vec![ValidationError::value_error(field, &message)])
            }
            AccountsError::WeakPassword { field, violation } => {
                Error::Validation(vec![ValidationError::weak_password(field, violation)])
            }
            AccountsError::SignupClosed => Error::SignupClosed,
            AccountsError::TooManySignups { retry_after } => Error::TooManySignups { retry_after },
            AccountsError::MailNotConfigured => Error::MailNotConfigured,
            AccountsError::InvalidEmailToken => Error::InvalidEmailToken,
            AccountsError::EmailNotVerified => Error::EmailNotVerified,
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

    /// The `detail` string a client sees; `None` for validation errors, whose detail is
    /// the list of problems, and for OAuth errors, which have none.
    fn detail(&self) -> Option<&'static str> {
        Some(match self {
            Error::IncorrectCredentials => "Incorrect username or password",
            Error::NotAuthenticated => "Not authenticated",
            Error::InvalidToken { .. } => "Could not validate credentials",
            Error::InsufficientScope { .. } => "Not enough permissions",
            Error::InactiveUser => "Inactive user",
            Error::IncorrectPassword => "Incorrect password",
            Error::SessionNotFound => "Session not found",
            Error::Validation(_) | Error::OAuth { .. } => return None,
            Error::BodyTooLarge => "Request body too large",
            Error::Busy => "Server busy, retry later",
            Error::TooManyAttempts { .. } => "Too many failed attempts, retry later",
            Error::RequestTimeout => "Request timeout",
            Error::NotFound => "Not Found",
            Error::UserNotFound => "User not found",
            Error::UserExists => "Username already registered",
            Error::EmailExists => "Email already registered",
            Error::LastAdmin => {
                "The last enabled user holding the admin scope cannot lose it: grant admin to \
                 another user first"
            }
            Error::AlreadyRegistered { email: false } => "Username already registered",
            Error::AlreadyRegistered { email: true } => "Email already registered",
            Error::SignupClosed => "Signup is closed",
            Error::TooManySignups { .. } => "Too many signups, retry later",
            Error::MailNotConfigured => "Mail is not configured",
            Error::InvalidEmailToken => "Invalid or expired token",
            Error::EmailNotVerified => "Email not verified",
            Error::MethodNotAllowed { .. } => "Method Not Allowed",
            Error::Database(_) => "Service unavailable, retry later",
            Error::Internal(_) => "Internal Server Error",
        })
    }

    /// The response body, as JSON.
    fn body(&self) -> Value {
        match self {
            Error::Validation(errors) => HttpValidationError {
                detail: errors.clone(),
            }
            .to_json()
            .unwrap_or_default(),
            Error::OAuth { error, description } => OAuthError {
                error: *error,
                error_description: description.clone(),
            }
            .to_json()
            .unwrap_or_default(),
            _ => serde_json::json!({ "detail": self.detail() }),
        }
    }

    /// The body `operation_id` answers with `status`, as an example for the OpenAPI
    /// document, where the status alone does not tell it (signup, verification, reset);
    /// `None`: see [`Self::example_body`].
    pub fn operation_example_body(operation_id: &str, status: StatusCode) -> Option<Value> {
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

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_BUSY_SECS: &str = "1";

impl ResponseError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::IncorrectCredentials
            | Error::NotAuthenticated
            | Error::InvalidToken { .. }
            | Error::InsufficientScope { .. } => StatusCode::UNAUTHORIZED,
            Error::InactiveUser
            | Error::IncorrectPassword
            | Error::OAuth { .. }
            | Error::AlreadyRegistered { .. }
            | Error::InvalidEmailToken
            | Error::EmailNotVerified => StatusCode::BAD_REQUEST,
            Error::SignupClosed => StatusCode::FORBIDDEN,
            Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::TooManyAttempts { .. } | Error::TooManySignups { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::Busy | Error::Database(_) | Error::MailNotConfigured => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::NotFound | Error::UserNotFound | Error::SessionNotFound => StatusCode::NOT_FOUND,
            Error::UserExists | Error::EmailExists | Error::LastAdmin => StatusCode::CONFLICT,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        // The cause may name tables or paths: the log gets it, the client does not.
        match self {
            Error::Database(_) => tracing::error!(error = %self, "database failure"),
            Error::Internal(_) => tracing::error!(error = %self, "internal failure"),
            _ => {}
        }
        let Some(detail) = self.detail() else {
            let mut resp = json_response(self.status(), self.body().to_string());
            if let Error::OAuth { .. } = self {
                // RFC 6749 §5.1, as for the token response itself.
                let headers = resp.headers_mut();
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            }
            return resp;
        };
        let body = HttpError {
            detail: detail.to_owned(),
        };
        let mut resp = json_response(self.status(), body.to_json_string());
        let headers = resp.headers_mut();
        match self {
            Error::IncorrectCredentials | Error::NotAuthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::InvalidToken { required } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    bearer_challenge(required, "invalid_token"),
                );
            }
            Error::InsufficientScope { required } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    bearer_challenge(required, "insufficient_scope"),
                );
            }
            Error::Busy | Error::Database(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_BUSY_SECS),
                );
            }
            Error::TooManyAttempts { retry_after } | Error::TooManySignups { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Error::MailNotConfigured => {
                // A setting is missing: retrying soon will not help.
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
            }
            Error::RequestTimeout => {
                // The rest of the body may still be on its way: this connection is done.
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Error::MethodNotAllowed { allow } => {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, value);
                }
            }
            _ => {}
        }
        resp
    }
}

/// `Bearer scope="<required>", error="<error>"` (RFC 6750 §3), FastAPI's challenge with
/// the RFC's `error`; `scope` is left out when the operation requires none.
fn bearer_challenge(required: &str, error: &str) -> HeaderValue {
    let challenge = if required.is_empty() {
        format!("Bearer error=\"{error}\"")
    } else {
        format!("Bearer scope=\"{required}\", error=\"{error}\"")
    };
    // Scope names are ASCII tokens; the fallback is never reached.
    HeaderValue::from_str(&challenge).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn json_response(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(Body::from_string(body))
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
