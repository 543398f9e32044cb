//! The one error type of the HTTP layer.
//!
//! Every failure a client can see is a variant of [`Error`]; its response is
//! `{"detail": ...}` exactly as the FastAPI tutorial's app answers (the OAuth errors of
//! `/token` and `/revoke` in RFC 6749's shape). Internal causes (database, hashing pool)
//! are logged in full and never shown to the client.
//!
//! - `body`: the bodies, and which one each variant has;
//! - `response`: each variant's status and headers;
//! - `document`: what the OpenAPI document promises ([`ApiError`], [`ErrorStatuses`]).

mod body;
mod document;
mod response;

pub use self::{
    body::{
        AnyHttpError, AnyOAuthError, HttpError, HttpValidationError, OAuthError, OAuthErrorCode,
        ValidationError,
    },
    document::{
        ApiError, ErrorStatuses, BODY_TOO_LARGE, INTERNAL_ERROR, REQUEST_TIMEOUT,
        STORAGE_UNAVAILABLE,
    },
};
use crate::accounts::{AccountsError, GrantError, StepUp};

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
    /// A login of a user with TOTP on that brought no `otp`.
    #[error("second factor required")]
    SecondFactorRequired,
    /// A login's wrong, spent or replayed TOTP or recovery code.
    #[error("incorrect code")]
    IncorrectCode,
    /// A wrong code confirming an enrolment: the request is wrong, not the token.
    #[error("incorrect confirmation code")]
    IncorrectConfirmationCode,
    /// The sign-in is too old, or lacks the second factor (RFC 9470).
    #[error("a more recent sign-in is required")]
    StepUpRequired(StepUp),
    #[error("no TOTP enrolment is pending")]
    NoTotpEnrolment,
    #[error("TOTP is not on")]
    TotpNotEnabled,
    /// An OAuth error of the refresh grant or of `/revoke`: 400 in RFC 6749 §5.2's shape.
    #[error("OAuth error {error:?}: {description}")]
    OAuth {
        error: OAuthErrorCode,
        description: String,
    },
    /// Client authentication failed at the token endpoint: 401 in RFC 6749 §5.2's shape
    /// (`invalid_client`), with `WWW-Authenticate: Basic`.
    #[error("client authentication failed")]
    InvalidClient,
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
    #[error("no such client")]
    ClientNotFound,
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
            AccountsError::SecondFactorRequired => Error::SecondFactorRequired,
            AccountsError::IncorrectCode => Error::IncorrectCode,
            AccountsError::StepUpRequired(step_up) => Error::StepUpRequired(step_up),
            AccountsError::NoTotpEnrolment => Error::NoTotpEnrolment,
            AccountsError::TotpNotEnabled => Error::TotpNotEnabled,
            AccountsError::TooManyAttempts { retry_after } => {
                Error::TooManyAttempts { retry_after }
            }
            AccountsError::Busy => Error::Busy,
            AccountsError::Database(e) => Error::Database(e),
            AccountsError::UserExists(_) => Error::UserExists,
            AccountsError::EmailExists(_) => Error::EmailExists,
            AccountsError::NoSuchUser(_) => Error::UserNotFound,
            AccountsError::InvalidClient => Error::InvalidClient,
            AccountsError::NoSuchClient(_) => Error::ClientNotFound,
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
            GrantError::InvalidGrant | GrantError::Reused | GrantError::CodeReused => {
                OAuthErrorCode::InvalidGrant
            }
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
