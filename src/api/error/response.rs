//! The response of each [`Error`] variant: its status and the headers that go with it
//! (the bearer challenge, `Retry-After`, `Allow`, ...), around the body of [`super::body`].
//! Internal causes are logged here and never sent.

use poem::{
    error::ResponseError,
    http::{header, HeaderValue, StatusCode},
    Body, Response,
};

use super::Error;
use crate::accounts::StepUp;

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_BUSY_SECS: &str = "1";

impl ResponseError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::IncorrectCredentials
            | Error::NotAuthenticated
            | Error::InvalidToken { .. }
            | Error::InsufficientScope { .. }
            | Error::SecondFactorRequired
            | Error::IncorrectCode
            | Error::StepUpRequired(_)
            | Error::InvalidClient => StatusCode::UNAUTHORIZED,
            Error::InactiveUser
            | Error::IncorrectPassword
            | Error::IncorrectConfirmationCode
            | Error::NoTotpEnrolment
            | Error::TotpNotEnabled
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
            Error::NotFound
            | Error::UserNotFound
            | Error::ClientNotFound
            | Error::SessionNotFound => StatusCode::NOT_FOUND,
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
        let mut resp = Response::builder()
            .status(self.status())
            .content_type("application/json")
            .body(Body::from_string(self.body().to_string()));
        let headers = resp.headers_mut();
        match self {
            Error::IncorrectCredentials
            | Error::NotAuthenticated
            | Error::SecondFactorRequired
            | Error::IncorrectCode => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::StepUpRequired(step_up) => {
                let description = self.detail().unwrap_or_default();
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    step_up_challenge(step_up, description),
                );
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
            Error::OAuth { .. } => {
                // RFC 6749 §5.1, as for the token response itself.
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            }
            Error::InvalidClient => {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
                // RFC 6749 §5.2 asks for the scheme the client tried when it used Basic;
                // HTTP wants a challenge on every 401, and Basic is the one clients can
                // answer (RFC 7617 requires a realm).
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"gatehouse\""),
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

/// RFC 9470 §3's challenge: `Bearer error="insufficient_user_authentication",
/// error_description="...", acr_values="mfa", max_age=<seconds>`, with `acr_values` where
/// the second factor is missing and `max_age` where the sign-in must be recent.
fn step_up_challenge(step_up: &StepUp, description: &str) -> HeaderValue {
    let mut challenge = format!(
        "Bearer error=\"insufficient_user_authentication\", error_description=\"{description}\""
    );
    if step_up.factor_missing {
        challenge.push_str(", acr_values=\"mfa\"");
    }
    if let Some(max_age) = step_up.max_age {
        challenge.push_str(&format!(", max_age={max_age}"));
    }
    // The description is one of ours, plain ASCII; the fallback is never reached.
    HeaderValue::from_str(&challenge).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
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

#[cfg(test)]
mod tests {
    use poem::{error::ResponseError, http::StatusCode};
    use serde_json::{json, Value};

    use super::super::{Error, ValidationError};
    use crate::accounts::StepUp;

    /// The rows of the table: a variant's pattern, an example of it, then the status, the
    /// body and the headers besides `content-type: application/json` it answers with. The
    /// patterns also make a `match` with no `_` arm, so a new variant does not compile
    /// until it has a row.
    macro_rules! answers {
        ($($variant:pat => $example:expr, $status:ident, $body:tt, [$($name:literal: $value:literal),*];)*) => {
            #[allow(dead_code, unreachable_patterns)]
            fn every_variant_has_a_row(error: &Error) {
                match error {
                    $($variant => {})*
                }
            }

            fn rows() -> Vec<(Error, StatusCode, Value, Vec<(&'static str, &'static str)>)> {
                vec![$((
                    $example,
                    StatusCode::$status,
                    json!($body),
                    vec![("content-type", "application/json"), $(($name, $value)),*],
                )),*]
            }
        };
    }

    answers! {
        Error::IncorrectCredentials => Error::IncorrectCredentials,
            UNAUTHORIZED, {"detail": "Incorrect username or password"},
            ["www-authenticate": "Bearer"];
        Error::NotAuthenticated => Error::NotAuthenticated,
            UNAUTHORIZED, {"detail": "Not authenticated"},
            ["www-authenticate": "Bearer"];
        Error::InvalidToken { .. } => Error::InvalidToken { required: String::new() },
            UNAUTHORIZED, {"detail": "Could not validate credentials"},
            ["www-authenticate": r#"Bearer error="invalid_token""#];
        Error::InvalidToken { .. } => Error::InvalidToken { required: "me items".to_owned() },
            UNAUTHORIZED, {"detail": "Could not validate credentials"},
            ["www-authenticate": r#"Bearer scope="me items", error="invalid_token""#];
        Error::InsufficientScope { .. } => Error::InsufficientScope { required: "admin".to_owned() },
            UNAUTHORIZED, {"detail": "Not enough permissions"},
            ["www-authenticate": r#"Bearer scope="admin", error="insufficient_scope""#];
        Error::InactiveUser => Error::InactiveUser,
            BAD_REQUEST, {"detail": "Inactive user"}, [];
        Error::IncorrectPassword => Error::IncorrectPassword,
            BAD_REQUEST, {"detail": "Incorrect password"}, [];
        Error::SecondFactorRequired => Error::SecondFactorRequired,
            UNAUTHORIZED, {"detail": "Second factor required"},
            ["www-authenticate": "Bearer"];
        Error::IncorrectCode => Error::IncorrectCode,
            UNAUTHORIZED, {"detail": "Incorrect code"},
            ["www-authenticate": "Bearer"];
        Error::IncorrectConfirmationCode => Error::IncorrectConfirmationCode,
            BAD_REQUEST, {"detail": "Incorrect code"}, [];
        Error::StepUpRequired(_) => Error::StepUpRequired(StepUp { max_age: Some(300), factor_missing: false }),
            UNAUTHORIZED, {"detail": "A recent sign-in is required"},
            ["www-authenticate": r#"Bearer error="insufficient_user_authentication", error_description="A recent sign-in is required", max_age=300"#];
        Error::StepUpRequired(_) => Error::StepUpRequired(StepUp { max_age: Some(300), factor_missing: true }),
            UNAUTHORIZED, {"detail": "A recent sign-in with the second factor is required"},
            ["www-authenticate": r#"Bearer error="insufficient_user_authentication", error_description="A recent sign-in with the second factor is required", acr_values="mfa", max_age=300"#];
        Error::StepUpRequired(_) => Error::StepUpRequired(StepUp { max_age: None, factor_missing: true }),
            UNAUTHORIZED, {"detail": "A recent sign-in with the second factor is required"},
            ["www-authenticate": r#"Bearer error="insufficient_user_authentication", error_description="A recent sign-in with the second factor is required", acr_values="mfa""#];
        Error::NoTotpEnrolment => Error::NoTotpEnrolment,
            BAD_REQUEST, {"detail": "No TOTP enrolment to confirm: start one with POST /users/me/totp"}, [];
        Error::TotpNotEnabled => Error::TotpNotEnabled,
            BAD_REQUEST, {"detail": "TOTP is not on"}, [];
        Error::OAuth { .. } => Error::invalid_request("The token parameter is missing"),
            BAD_REQUEST,
            {"error": "invalid_request", "error_description": "The token parameter is missing"},
            ["cache-control": "no-store", "pragma": "no-cache"];
        Error::InvalidClient => Error::InvalidClient,
            UNAUTHORIZED,
            {"error": "invalid_client", "error_description": "Client authentication failed"},
            ["cache-control": "no-store", "pragma": "no-cache", "www-authenticate": r#"Basic realm="gatehouse""#];
        Error::SessionNotFound => Error::SessionNotFound,
            NOT_FOUND, {"detail": "Session not found"}, [];
        Error::Validation(_) => Error::Validation(vec![ValidationError::missing("username")]),
            UNPROCESSABLE_ENTITY,
            {"detail": [{"type": "missing", "loc": ["body", "username"], "msg": "Field required", "input": null}]},
            [];
        Error::BodyTooLarge => Error::BodyTooLarge,
            PAYLOAD_TOO_LARGE, {"detail": "Request body too large"}, [];
        Error::Busy => Error::Busy,
            SERVICE_UNAVAILABLE, {"detail": "Server busy, retry later"}, ["retry-after": "1"];
        Error::TooManyAttempts { .. } => Error::TooManyAttempts { retry_after: 42 },
            TOO_MANY_REQUESTS, {"detail": "Too many failed attempts, retry later"},
            ["retry-after": "42"];
        Error::RequestTimeout => Error::RequestTimeout,
            REQUEST_TIMEOUT, {"detail": "Request timeout"}, ["connection": "close"];
        Error::NotFound => Error::NotFound,
            NOT_FOUND, {"detail": "Not Found"}, [];
        Error::UserNotFound => Error::UserNotFound,
            NOT_FOUND, {"detail": "User not found"}, [];
        Error::ClientNotFound => Error::ClientNotFound,
            NOT_FOUND, {"detail": "Client not found"}, [];
        Error::UserExists => Error::UserExists,
            CONFLICT, {"detail": "Username already registered"}, [];
        Error::EmailExists => Error::EmailExists,
            CONFLICT, {"detail": "Email already registered"}, [];
        Error::AlreadyRegistered { .. } => Error::AlreadyRegistered { email: false },
            BAD_REQUEST, {"detail": "Username already registered"}, [];
        Error::AlreadyRegistered { .. } => Error::AlreadyRegistered { email: true },
            BAD_REQUEST, {"detail": "Email already registered"}, [];
        Error::SignupClosed => Error::SignupClosed,
            FORBIDDEN, {"detail": "Signup is closed"}, [];
        Error::TooManySignups { .. } => Error::TooManySignups { retry_after: 3599 },
            TOO_MANY_REQUESTS, {"detail": "Too many signups, retry later"},
            ["retry-after": "3599"];
        Error::MailNotConfigured => Error::MailNotConfigured,
            SERVICE_UNAVAILABLE, {"detail": "Mail is not configured"}, ["retry-after": "3600"];
        Error::InvalidEmailToken => Error::InvalidEmailToken,
            BAD_REQUEST, {"detail": "Invalid or expired token"}, [];
        Error::EmailNotVerified => Error::EmailNotVerified,
            BAD_REQUEST, {"detail": "Email not verified"}, [];
        Error::LastAdmin => Error::LastAdmin,
            CONFLICT,
            {"detail": "The last enabled user holding the admin scope cannot lose it: grant admin to another user first"},
            [];
        Error::MethodNotAllowed { .. } => Error::MethodNotAllowed { allow: "GET, HEAD".to_owned() },
            METHOD_NOT_ALLOWED, {"detail": "Method Not Allowed"}, ["allow": "GET, HEAD"];
        // The cause goes to the log, never to the client.
        Error::Database(_) => Error::Database(sea_orm::DbErr::Custom("table users is locked".to_owned())),
            SERVICE_UNAVAILABLE, {"detail": "Service unavailable, retry later"},
            ["retry-after": "1"];
        Error::Internal(_) => Error::Internal("handler panicked at src/api/users.rs".to_owned()),
            INTERNAL_SERVER_ERROR, {"detail": "Internal Server Error"}, [];
    }

    #[tokio::test]
    async fn every_variant_answers_its_status_body_and_headers() {
        for (error, status, body, headers) in rows() {
            let resp = error.as_response();
            assert_eq!(resp.status(), status, "{error:?}");
            assert_eq!(error.status(), status, "{error:?}");
            let mut sent: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                .collect();
            sent.sort();
            let mut expected: Vec<(String, String)> = headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect();
            expected.sort();
            assert_eq!(sent, expected, "{error:?}");
            let text = resp.into_body().into_string().await.unwrap();
            assert_eq!(text, body.to_string(), "{error:?}");
        }
    }
}
