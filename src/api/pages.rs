//! The HTML pages a person opens from a mail (and, later, the sign-in pages): compiled
//! templates under `templates/`, HTML-escaped by construction, all on one layout
//! (`page.html`) with one small stylesheet inline.
//!
//! Self-contained: no script, no external asset, nothing a page loads from anywhere. Each
//! is sent with a `Content-Security-Policy` that allows only its own stylesheet (by its
//! SHA-256) and forms posting to the page's own origin, and forbids framing; and, because
//! its URL carries a token, with `Cache-Control: no-store` (the security headers of every
//! answer add `Referrer-Policy: no-referrer`, so the token never leaves in a `Referer`).

use std::sync::LazyLock;

use askama::Template;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use poem::{
    http::{header, StatusCode},
    IntoResponse, Response,
};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
    ApiResponse,
};
use sha2::{Digest, Sha256};

/// The stylesheet of every page, inline.
pub const STYLE: &str = include_str!("../../templates/page.css");

/// The pages' `Content-Security-Policy`.
static POLICY: LazyLock<String> = LazyLock::new(|| policy(None));

/// The policy of a page whose forms post to the page's own origin and may be redirected
/// on to `redirect_origin` (the sign-in pages: browsers apply `form-action` to the
/// redirect after a form's POST too, and the flow ends at the client's redirect URI).
fn policy(redirect_origin: Option<&str>) -> String {
    let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let also = redirect_origin.map_or_else(String::new, |o| format!(" {o}"));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'{also}; \
         base-uri 'none'; frame-ancestors 'none'"
    )
}

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyEmailPage<'a> {
    token: &'a str,
    email: &'a str,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPasswordPage<'a> {
    token: &'a str,
    min_length: usize,
    problems: &'a [String],
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    action: &'a str,
    client_name: &'a str,
    csrf_token: &'a str,
    params: &'a [(String, String)],
    username: &'a str,
    problems: &'a [String],
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    action: &'a str,
    client_name: &'a str,
    csrf_token: &'a str,
    params: &'a [(String, String)],
    username: &'a str,
    scopes: &'a [String],
}

/// What the sign-in pages show and post back: the form's target, the client's name, the
/// CSRF token, and the authorization request's parameters as hidden fields.
#[derive(Debug, Clone, Copy)]
pub struct SignInForm<'a> {
    pub action: &'a str,
    pub client_name: &'a str,
    pub csrf_token: &'a str,
    pub params: &'a [(String, String)],
    /// The origin of the client's redirect URI, where the flow's last redirect goes.
    pub redirect_origin: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    heading: &'a str,
    text: &'a str,
}

/// A rendered page and its status.
#[derive(Debug)]
pub struct Page {
    status: StatusCode,
    html: String,
    /// `Retry-After`, in seconds.
    retry_after: Option<u64>,
    /// A `Content-Security-Policy` other than [`POLICY`].
    policy: Option<String>,
    /// `Set-Cookie` headers.
    cookies: Vec<String>,
}

impl Page {
    fn rendered(status: StatusCode, rendered: askama::Result<String>) -> Self {
        match rendered {
            Ok(html) => Self {
                status,
                html,
                retry_after: None,
                policy: None,
                cookies: Vec::new(),
            },
            // The templates take only strings: rendering cannot fail.
            Err(e) => {
                tracing::error!(error = %e, "rendering a page");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    html: "Internal Server Error".to_owned(),
                    retry_after: None,
                    policy: None,
                    cookies: Vec::new(),
                }
            }
        }
    }

    /// The page of a verification link: a button that confirms `email`.
    pub fn verify_email(token: &str, email: &str) -> Self {
        Self::rendered(StatusCode::OK, VerifyEmailPage { token, email }.render())
    }

    /// The page of a reset link: the new password's form, with `problems` of an earlier
    /// try above it (answered with `status`).
    pub fn reset_password(
        status: StatusCode,
        token: &str,
        min_length: usize,
        problems: &[String],
    ) -> Self {
        let page = ResetPasswordPage {
            token,
            min_length,
            problems,
        };
        Self::rendered(status, page.render())
    }

    /// The login page of the authorization flow, with `problems` of an earlier try
    /// (answered with `status`) and the `username` typed then.
    pub fn login(
        status: StatusCode,
        form: SignInForm<'_>,
        username: &str,
        problems: &[String],
    ) -> Self {
        let page = LoginPage {
            action: form.action,
            client_name: form.client_name,
            csrf_token: form.csrf_token,
            params: form.params,
            username,
            problems,
        };
        Self::rendered(status, page.render()).posting_on_to(form.redirect_origin)
    }

    /// The consent page: `username` is asked to allow `form`'s client `scopes` (their
    /// descriptions).
    pub fn consent(form: SignInForm<'_>, username: &str, scopes: &[String]) -> Self {
        let page = ConsentPage {
            action: form.action,
            client_name: form.client_name,
            csrf_token: form.csrf_token,
            params: form.params,
            username,
            scopes,
        };
        Self::rendered(StatusCode::OK, page.render()).posting_on_to(form.redirect_origin)
    }

    fn posting_on_to(mut self, redirect_origin: &str) -> Self {
        self.policy = Some(policy(Some(redirect_origin)));
        self
    }

    /// The page with a `Set-Cookie` header of `cookie`.
    pub fn with_cookie(mut self, cookie: String) -> Self {
        self.cookies.push(cookie);
        self
    }

    /// The page with `Retry-After: secs`.
    pub fn retrying_after_secs(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// A page that only says something.
    pub fn message(status: StatusCode, heading: &str, text: &str) -> Self {
        Self::rendered(status, MessagePage { heading, text }.render())
    }

    /// The page of a link that is not (or no longer) good.
    pub fn invalid_link() -> Self {
        Self::message(
            StatusCode::BAD_REQUEST,
            "This link is invalid or has expired",
            "It may have been used already. Ask for a new mail and use the link in it.",
        )
    }

    /// The page of a failure that is not the person's doing: storage down, and so on.
    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again in a moment",
                "The service could not answer just now. Nothing was changed.",
            )
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut resp = Response::builder()
            .status(self.status)
            .content_type("text/html; charset=utf-8")
            .header(
                header::CONTENT_SECURITY_POLICY,
                self.policy.as_deref().unwrap_or(POLICY.as_str()),
            )
            .header(header::CACHE_CONTROL, "no-store");
        for cookie in self.cookies {
            resp = resp.header(header::SET_COOKIE, cookie);
        }
        if let Some(secs) = self.retry_after {
            resp = resp.header(header::RETRY_AFTER, secs.to_string());
        }
        resp.body(self.html)
    }
}

/// The statuses a page operation documents, each as HTML.
pub const PAGE_STATUSES: [(u16, &str); 4] = [
    (200, "The page"),
    (
        400,
        "The link is invalid, used or expired: a page that says so",
    ),
    (503, "Storage unavailable: a page asking to retry"),
    (500, "Internal Server Error"),
];

impl ApiResponse for Page {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: PAGE_STATUSES
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "text/html; charset=utf-8",
                        schema: String::schema_ref(),
                    }],
                    headers: Vec::new(),
                })
                .collect(),
        }
    }

    fn register(_registry: &mut Registry) {}
}

/// An operation's answer: `R` for an API client (what the document describes), or a
/// page for a person whose browser posted a page's form.
pub enum PageOr<R> {
    Api(R),
    Page(Page),
}

impl<R: ApiResponse> ApiResponse for PageOr<R> {
    fn meta() -> MetaResponses {
        R::meta()
    }

    fn register(registry: &mut Registry) {
        R::register(registry);
    }
}

impl<R: IntoResponse> IntoResponse for PageOr<R> {
    fn into_response(self) -> Response {
        match self {
            PageOr::Api(r) => r.into_response(),
            PageOr::Page(page) => page.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show_and_carry_their_policy() {
        let page = Page::verify_email("t\"><script>", "ann<b>@example.com");
        assert!(
            page.html.contains("value=\"t&#34;&#62;&#60;script&#62;\""),
            "{}",
            page.html
        );
        assert!(page.html.contains("ann&#60;b&#62;@example.com"));
        assert!(!page.html.contains("<script"));
        assert!(page.html.contains("<form method=\"post\">"));
        assert!(page.html.contains(&format!("<style>{STYLE}</style>")));
        let resp = page.into_response();
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.ends_with("form-action 'self'; base-uri 'none'; frame-ancestors 'none'"));
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    }
}
