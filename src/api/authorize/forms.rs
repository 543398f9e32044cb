//! The login and consent pages' forms (`POST /authorize/login`, `POST /authorize/consent`):
//! a browser's form targets, not API operations, so they are not in the document.

use poem::{http::StatusCode, IntoResponse, Request, RequestBody, Response};
use secrecy::SecretString;

use super::{
    after_sign_in,
    browser::{cookie, csrf_matches, csrf_refused, login_page, set_cookie},
    browser_sign_in, issue_code, refuse,
    request::{check_request, Authorization, Params},
    response::{unavailable, SignInResponse},
    SESSION_COOKIE,
};
use crate::{
    accounts::AccountsError,
    api::{
        client_addr::client_ip,
        error::Error,
        form::{parse_fields, read_body, Fields},
        pages::Page,
        service_url::ServiceUrl,
        AppState,
    },
};

/// The fields of a sign-in page's form, within the body limits, or the page that says
/// it could not be read.
pub(super) async fn form_fields(
    req: &Request,
    mut body: RequestBody,
) -> Result<Fields, SignInResponse> {
    match read_body(req, &mut body).await {
        Ok(bytes) => Ok(parse_fields(req.content_type().unwrap_or_default(), bytes).await),
        Err(e) => {
            let status = match e {
                Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
                Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            Err(SignInResponse::Page(Page::message(
                status,
                "The form could not be read",
                "Go back and try again.",
            )))
        }
    }
}

/// `POST /authorize/login`: the login page's form. Not in the document: a browser's
/// form target, not an API.
pub async fn login_form(req: Request) -> Response {
    let Some(state) = req.data::<AppState>().cloned() else {
        return Page::unavailable().into_response();
    };
    let (req, body) = req.split();
    let answer = match submitted_form(&state, &req, body).await {
        Ok((fields, auth)) => login_submitted(&state, &req, &fields, &auth).await,
        Err(answer) => answer,
    };
    answer.after_post().into_response()
}

/// A sign-in page's form: its fields, and the authorization request they carry, checked
/// again whole, with this browser's CSRF token.
pub(super) async fn submitted_form(
    state: &AppState,
    req: &Request,
    body: RequestBody,
) -> Result<(Fields, Authorization), SignInResponse> {
    let fields = form_fields(req, body).await?;
    let auth = check_request(state, req, Params::from_fields(&fields)).await?;
    if !csrf_matches(req, &fields) {
        return Err(csrf_refused());
    }
    Ok((fields, auth))
}

pub(super) async fn login_submitted(
    state: &AppState,
    req: &Request,
    fields: &Fields,
    auth: &Authorization,
) -> SignInResponse {
    let username = fields.get("username").unwrap_or_default();
    let password = fields.get("password").unwrap_or_default();
    let page = |status: StatusCode, problem: &str| {
        login_page(state, req, auth, status, username, &[problem.to_owned()])
    };
    if username.is_empty() || password.is_empty() {
        return SignInResponse::Page(page(
            StatusCode::BAD_REQUEST,
            "Enter your username and password.",
        ));
    }
    if username.chars().count() > crate::accounts::MAX_USERNAME_CHARS
        || password.len() > crate::accounts::MAX_PASSWORD_BYTES
    {
        return SignInResponse::Page(page(
            StatusCode::UNAUTHORIZED,
            "Incorrect username or password",
        ));
    }
    let otp = fields.get("otp").map(SecretString::from);
    let client = client_ip(req, &state.trusted_proxies);
    let signed_in = state
        .accounts
        .start_browser_session(client, username, SecretString::from(password), otp)
        .await;
    let (cookie_value, sign_in) = match signed_in {
        Ok(found) => found,
        Err(e) => {
            let (status, problem) = match &e {
                AccountsError::IncorrectCredentials => (
                    StatusCode::UNAUTHORIZED,
                    "Incorrect username or password".to_owned(),
                ),
                AccountsError::SecondFactorRequired => (
                    StatusCode::UNAUTHORIZED,
                    "Second factor required: enter the code of your authenticator app, or a \
                     recovery code."
                        .to_owned(),
                ),
                AccountsError::IncorrectCode => {
                    (StatusCode::UNAUTHORIZED, "Incorrect code".to_owned())
                }
                AccountsError::EmailNotVerified => (
                    StatusCode::BAD_REQUEST,
                    "Email not verified: use the link of the verification mail first.".to_owned(),
                ),
                AccountsError::InactiveUser => {
                    (StatusCode::BAD_REQUEST, "Inactive user".to_owned())
                }
                AccountsError::TooManyAttempts { retry_after } => {
                    let page = page(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!("Too many failed sign-ins. Try again in {retry_after} seconds."),
                    );
                    return SignInResponse::Page(page.retrying_after_secs(*retry_after));
                }
                AccountsError::Busy => {
                    let page = page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The service is busy. Try again in a moment.",
                    );
                    return SignInResponse::Page(page.retrying_after_secs(1));
                }
                _ => return unavailable(&e),
            };
            return SignInResponse::Page(page(status, &problem));
        }
    };
    // A new sign-in replaces this browser's earlier one (`prompt=login`, `max_age`).
    if let Some(earlier) = cookie(req, SESSION_COOKIE) {
        if let Err(e) = state.accounts.end_browser_session(earlier).await {
            tracing::warn!(error = %e, "could not end the earlier browser session");
        }
    }
    let url = ServiceUrl::of(req, state);
    let lifetime = state.accounts.browser_session_lifetime_secs();
    let set = set_cookie(state, &url, SESSION_COOKIE, &cookie_value, lifetime);
    // Just signed in: `prompt=login` and `max_age` are met.
    after_sign_in(state, req, auth, &sign_in)
        .await
        .with_cookie(set)
}

/// `POST /authorize/consent`: the consent page's form (`decision=allow` or `deny`). Not
/// in the document.
pub async fn consent_form(req: Request) -> Response {
    let Some(state) = req.data::<AppState>().cloned() else {
        return Page::unavailable().into_response();
    };
    let (req, body) = req.split();
    let answer = match submitted_form(&state, &req, body).await {
        Ok((fields, auth)) => consent_submitted(&state, &req, &fields, &auth).await,
        Err(answer) => answer,
    };
    answer.after_post().into_response()
}

pub(super) async fn consent_submitted(
    state: &AppState,
    req: &Request,
    fields: &Fields,
    auth: &Authorization,
) -> SignInResponse {
    let sign_in = match browser_sign_in(state, req).await {
        Ok(Some(sign_in)) => sign_in,
        // Signed out (or the session ended) since the page was shown: sign in again.
        Ok(None) => {
            return SignInResponse::Page(login_page(state, req, auth, StatusCode::OK, "", &[]))
        }
        Err(e) => return unavailable(&e),
    };
    match fields.get("decision") {
        Some("allow") => issue_code(state, auth, &sign_in).await,
        _ => refuse(auth, "access_denied", "The user denied the request"),
    }
}
