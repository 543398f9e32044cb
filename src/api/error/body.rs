//! The bodies errors are answered with: FastAPI's `{"detail": "..."}` and pydantic's
//! validation list, RFC 6749's OAuth error, and the unions that document them; and which
//! body each [`Error`] variant has.

use poem_openapi::{
    types::{Example, ToJSON},
    Enum, Object, Union,
};
use serde_json::Value;

use super::Error;
use crate::{
    accounts::{GrantError, StepUp},
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
    InvalidClient,
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

impl Error {
    /// The `detail` string a client sees; `None` for validation errors, whose detail is
    /// the list of problems, and for OAuth errors, which have none.
    pub(super) fn detail(&self) -> Option<&'static str> {
        Some(match self {
            Error::IncorrectCredentials => "Incorrect username or password",
            Error::NotAuthenticated => "Not authenticated",
            Error::InvalidToken { .. } => "Could not validate credentials",
            Error::InsufficientScope { .. } => "Not enough permissions",
            Error::InactiveUser => "Inactive user",
            Error::IncorrectPassword => "Incorrect password",
            Error::SecondFactorRequired => "Second factor required",
            Error::IncorrectCode | Error::IncorrectConfirmationCode => "Incorrect code",
            Error::StepUpRequired(StepUp {
                factor_missing: false,
                ..
            }) => "A recent sign-in is required",
            Error::StepUpRequired(StepUp {
                factor_missing: true,
                ..
            }) => "A recent sign-in with the second factor is required",
            Error::NoTotpEnrolment => {
                "No TOTP enrolment to confirm: start one with POST /users/me/totp"
            }
            Error::TotpNotEnabled => "TOTP is not on",
            Error::SessionNotFound => "Session not found",
            Error::Validation(_) | Error::OAuth { .. } | Error::InvalidClient => return None,
            Error::BodyTooLarge => "Request body too large",
            Error::Busy => "Server busy, retry later",
            Error::TooManyAttempts { .. } => "Too many failed attempts, retry later",
            Error::RequestTimeout => "Request timeout",
            Error::NotFound => "Not Found",
            Error::UserNotFound => "User not found",
            Error::ClientNotFound => "Client not found",
            Error::UserExists => "Username already registered",
            Error::EmailExists => "Email already registered",
            Error::AlreadyRegistered { email: false } => "Username already registered",
            Error::AlreadyRegistered { email: true } => "Email already registered",
            Error::SignupClosed => "Signup is closed",
            Error::TooManySignups { .. } => "Too many signups, retry later",
            Error::MailNotConfigured => "Mail is not configured",
            Error::InvalidEmailToken => "Invalid or expired token",
            Error::EmailNotVerified => "Email not verified",
            Error::LastAdmin => {
                "The last enabled user holding the admin scope cannot lose it: grant admin to \
                 another user first"
            }
            Error::MethodNotAllowed { .. } => "Method Not Allowed",
            Error::Database(_) => "Service unavailable, retry later",
            Error::Internal(_) => "Internal Server Error",
        })
    }

    /// The response body, as JSON.
    pub(super) fn body(&self) -> Value {
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
            Error::InvalidClient => OAuthError {
                error: OAuthErrorCode::InvalidClient,
                error_description: "Client authentication failed".to_owned(),
            }
            .to_json()
            .unwrap_or_default(),
            _ => serde_json::json!({ "detail": self.detail() }),
        }
    }
}
