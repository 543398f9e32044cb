//! The response of each [`Error`] variant: its status and the headers that go with it
//! (the bearer challenge, `Retry-After`, `Allow`, ...), around the body of [`super::body`].
//! Internal causes are logged here and never sent.

use poem::{
    error::ResponseError,
    http::{header, HeaderValue, StatusCode},
    Body, Response,
};

use super::Error;

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_BUSY_SECS: &str = "1";

impl ResponseError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::IncorrectCredentials
            | Error::NotAuthenticated
            | Error::InvalidToken { .. }
            | Error::InsufficientScope { .. } => StatusCode::UNAUTHORIZED,
            Error::InactiveUser | Error::IncorrectPassword | Error::OAuth { .. } => {
                StatusCode::BAD_REQUEST
            }
            Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::Busy | Error::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::NotFound | Error::UserNotFound | Error::SessionNotFound => StatusCode::NOT_FOUND,
            Error::UserExists | Error::LastAdmin => StatusCode::CONFLICT,
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
            Error::OAuth { .. } => {
                // RFC 6749 §5.1, as for the token response itself.
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            }
            Error::Busy | Error::Database(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_BUSY_SECS),
                );
            }
            Error::TooManyAttempts { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
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
