//! What a step of the flow answers (a page or a redirect), and the errors it sends back
//! to a client's redirect URI (RFC 6749 §4.1.2.1, RFC 9207).

use std::fmt::Write as _;

use poem::{
    http::{header, StatusCode},
    IntoResponse, Response,
};
use poem_openapi::{
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
    ApiResponse,
};
use url::Url;

use crate::{accounts::AccountsError, api::pages::Page};

/// What a step of the flow answers: a page, or a redirect (to the client, or back).
pub enum SignInResponse {
    Page(Page),
    Redirect {
        status: StatusCode,
        location: String,
        cookies: Vec<String>,
    },
}

impl SignInResponse {
    pub(super) fn to_client(location: String) -> Self {
        Self::Redirect {
            status: StatusCode::FOUND,
            location,
            cookies: Vec::new(),
        }
    }

    pub(super) fn with_cookie(self, cookie: String) -> Self {
        match self {
            Self::Page(page) => Self::Page(page.with_cookie(cookie)),
            Self::Redirect {
                status,
                location,
                mut cookies,
            } => {
                cookies.push(cookie);
                Self::Redirect {
                    status,
                    location,
                    cookies,
                }
            }
        }
    }

    /// After a form's POST the redirect is a 303, so the browser follows it with a GET.
    pub(super) fn after_post(self) -> Self {
        match self {
            Self::Redirect {
                location, cookies, ..
            } => Self::Redirect {
                status: StatusCode::SEE_OTHER,
                location,
                cookies,
            },
            page => page,
        }
    }
}

impl IntoResponse for SignInResponse {
    fn into_response(self) -> Response {
        match self {
            Self::Page(page) => page.into_response(),
            Self::Redirect {
                status,
                location,
                cookies,
            } => {
                let mut resp = Response::builder()
                    .status(status)
                    .header(header::LOCATION, location)
                    .header(header::CACHE_CONTROL, "no-store");
                for cookie in cookies {
                    resp = resp.header(header::SET_COOKIE, cookie);
                }
                resp.finish()
            }
        }
    }
}

/// The statuses the flow's operations document.
pub(super) const SIGN_IN_STATUSES: [(u16, &str, &str); 5] = [
    (
        200,
        "text/html; charset=utf-8",
        "The login page (no live sign-in in this browser, `prompt=login`, or an older one than \
         `max_age`), or the consent page (a third-party client)",
    ),
    (
        302,
        "",
        "Back to the client's redirect URI (`Location`), with `code`, `state` and `iss`; or \
         with `error` (`invalid_request`, `unsupported_response_type`, `invalid_scope`, \
         `access_denied`, `login_required`, `consent_required`, \
         `request_not_supported`), `error_description`, `state` and `iss`",
    ),
    (
        400,
        "text/html; charset=utf-8",
        "An error page: the client is unknown, or the redirect URI is missing or not one the \
         client registered (never a redirect)",
    ),
    (
        503,
        "text/html; charset=utf-8",
        "Storage unavailable: a page asking to retry",
    ),
    (500, "text/html; charset=utf-8", "Internal Server Error"),
];

impl ApiResponse for SignInResponse {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: SIGN_IN_STATUSES
                .iter()
                .map(|(status, content_type, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: if content_type.is_empty() {
                        Vec::new()
                    } else {
                        vec![MetaMediaType {
                            content_type,
                            schema: String::schema_ref(),
                        }]
                    },
                    headers: if *status == 302 {
                        vec![MetaHeader {
                            name: "Location".to_owned(),
                            description: Some("Where the browser goes next".to_owned()),
                            schema: String::schema_ref(),
                            required: true,
                            deprecated: false,
                        }]
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        }
    }

    fn register(_registry: &mut Registry) {}
}

/// `uri` with `params` added to its query.
pub(super) fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        // Registered URIs are absolute URLs; this is only ever a last resort.
        Err(_) => {
            let mut out = uri.to_owned();
            let mut sep = if uri.contains('?') { '&' } else { '?' };
            for (k, v) in params {
                let v: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
                let _ = write!(out, "{sep}{k}={v}");
                sep = '&';
            }
            out
        }
    }
}

/// The origin of `uri` (`https://app.example.com`), for the pages' `form-action`.
pub(super) fn origin_of(uri: &str) -> String {
    Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The page of a failure that is not the person's doing.
pub(super) fn unavailable(e: &AccountsError) -> SignInResponse {
    tracing::error!(error = %e, "sign-in flow failed");
    SignInResponse::Page(Page::unavailable())
}

pub(super) fn error_page(heading: &str, text: &str) -> SignInResponse {
    SignInResponse::Page(Page::message(StatusCode::BAD_REQUEST, heading, text))
}

/// An OAuth error sent back to the client (RFC 6749 §4.1.2.1, RFC 9207).
pub(super) fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> SignInResponse {
    let params = [("error", error), ("error_description", description)];
    back_to_client(redirect_uri, &params, state, issuer)
}

/// The browser sent to `redirect_uri` with `params` (a code, or an error), then `state`
/// when the request had one and `iss` (RFC 9207), as every answer to the client carries.
pub(super) fn back_to_client(
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> SignInResponse {
    let mut params = params.to_vec();
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    SignInResponse::to_client(with_query(redirect_uri, &params))
}
