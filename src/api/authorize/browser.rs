//! The browser's side: its cookies (the sign-in, the CSRF token) and the login and
//! consent pages.

use poem::{
    http::{header, StatusCode},
    Request,
};
use subtle::ConstantTimeEq;

use super::{
    request::Authorization,
    response::{error_page, origin_of, SignInResponse},
    CONSENT_PATH, CSRF_COOKIE, LOGIN_PATH,
};
use crate::{
    accounts::authorize::BrowserSignIn,
    api::{
        form::Fields,
        pages::{Page, SignInForm},
        service_url::ServiceUrl,
        AppState,
    },
    auth::email_token::new_email_token,
};

/// `name`'s value among the request's cookies.
pub(super) fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Secure` when the service is
/// reached over https, for the service's path; `max_age` 0 deletes it.
pub(super) fn set_cookie(
    state: &AppState,
    url: &ServiceUrl,
    name: &str,
    value: &str,
    max_age: u64,
) -> String {
    let path = if state.root_path.is_empty() {
        "/"
    } else {
        &state.root_path
    };
    let mut cookie =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax");
    if url.base().starts_with("https://") {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The CSRF token of this browser's forms: the cookie's, or a new one (and its cookie).
pub(super) fn csrf_token(state: &AppState, req: &Request) -> (String, Option<String>) {
    match cookie(req, CSRF_COOKIE).filter(|t| t.len() == 43) {
        Some(token) => (token.to_owned(), None),
        None => {
            let (token, _) = new_email_token();
            let url = ServiceUrl::of(req, state);
            // A day: a page left open over lunch still posts.
            let set = set_cookie(state, &url, CSRF_COOKIE, &token, 86_400);
            (token, Some(set))
        }
    }
}

/// Whether a form's `csrf_token` is this browser's CSRF cookie.
pub(super) fn csrf_matches(req: &Request, fields: &Fields) -> bool {
    match (cookie(req, CSRF_COOKIE), fields.get("csrf_token")) {
        (Some(cookie), Some(sent)) => bool::from(cookie.as_bytes().ct_eq(sent.as_bytes())),
        _ => false,
    }
}

/// The login page for `auth`, with `problems` (answered with `status`).
pub(super) fn login_page(
    state: &AppState,
    req: &Request,
    auth: &Authorization,
    status: StatusCode,
    username: &str,
    problems: &[String],
) -> Page {
    sign_in_page(state, req, auth, LOGIN_PATH, |form| {
        Page::login(status, form, username, problems)
    })
}

/// The consent page for `auth`, for `sign_in`'s user.
pub(super) fn consent_page(
    state: &AppState,
    req: &Request,
    auth: &Authorization,
    sign_in: &BrowserSignIn,
) -> Page {
    let mut scopes: Vec<String> = auth
        .granted
        .scopes
        .iter()
        .map(|s| s.description().to_owned())
        .collect();
    let openid = auth.granted.openid;
    if openid.openid {
        scopes.insert(0, "Know who you are on this service.".to_owned());
    }
    if openid.profile {
        scopes.push("See your username and full name.".to_owned());
    }
    if openid.email {
        scopes.push("See your email address.".to_owned());
    }
    if scopes.is_empty() {
        scopes.push("Sign you in.".to_owned());
    }
    sign_in_page(state, req, auth, CONSENT_PATH, |form| {
        Page::consent(form, &sign_in.user.username, &scopes)
    })
}

/// A page of `auth`'s flow whose form posts to `path`: `render` gets the form's target,
/// this browser's CSRF token (its cookie is set when new) and the request's parameters
/// as hidden fields.
fn sign_in_page(
    state: &AppState,
    req: &Request,
    auth: &Authorization,
    path: &str,
    render: impl FnOnce(SignInForm<'_>) -> Page,
) -> Page {
    let (csrf, set) = csrf_token(state, req);
    let params = auth.params.hidden();
    let action = format!("{}{path}", state.root_path);
    let page = render(SignInForm {
        action: &action,
        client_name: &auth.client.client_name,
        csrf_token: &csrf,
        params: &params,
        redirect_origin: &origin_of(&auth.redirect_uri),
    });
    match set {
        Some(cookie) => page.with_cookie(cookie),
        None => page,
    }
}

/// The page of a form posted without this browser's CSRF token.
pub(super) fn csrf_refused() -> SignInResponse {
    error_page(
        "This form has expired",
        "It was not sent from this browser's sign-in page, or the page is too old. Go back \
         to the application and sign in again.",
    )
}
