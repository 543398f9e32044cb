//! Sign in with gatehouse: `GET /authorize` (OAuth 2.1's authorization-code flow with
//! PKCE, RFC 6749 §4.1, RFC 7636, OpenID Connect Core §3.1.2), its login and consent pages
//! and the forms they post (`POST /authorize/login`, `POST /authorize/consent`), and
//! RP-initiated logout (`GET /logout`).
//!
//! The request's parameters travel with the pages as hidden fields and are checked again,
//! whole, on every step: nothing a page posts is trusted because a page was shown. An
//! unknown client or redirect URI gets an error page, never a redirect (RFC 6749
//! §4.1.2.1); any other problem is sent back to the client's redirect URI with `error`,
//! `state` and `iss` (RFC 9207), as the code is.
//!
//! The pages post with a CSRF token that must equal the `gatehouse_csrf` cookie (a
//! double submit: another site can make a browser post a form but can neither read nor
//! set this origin's cookie). A sign-in sets `gatehouse_session`, with which the browser
//! authorizes further clients without the password until it expires, `prompt=login`, a
//! shorter `max_age`, or a logout.

mod browser;
mod forms;
mod request;
mod response;

pub use forms::{consent_form, login_form};
pub use request::authenticate_client;
pub use response::SignInResponse;

use poem::{http::StatusCode, web::Data, Request};
use poem_openapi::{param::Query, OpenApi};

use crate::{
    accounts::{
        authorize::{BrowserSignIn, CodeRequest},
        AccountsError,
    },
    api::{pages::Page, service_url::ServiceUrl, AppState},
};
use browser::{consent_page, cookie, login_page, set_cookie};
use request::{check_request, find_client, Authorization, Params};
use response::{back_to_client, error_redirect, unavailable, with_query};

/// The browser session's cookie.
pub const SESSION_COOKIE: &str = "gatehouse_session";
/// The CSRF cookie of the sign-in pages' forms.
pub const CSRF_COOKIE: &str = "gatehouse_csrf";
/// Where the login page posts, and the consent page.
pub const LOGIN_PATH: &str = "/authorize/login";
pub const CONSENT_PATH: &str = "/authorize/consent";
/// Swagger UI's built-in public client, and its redirect page.
pub const DOCS_CLIENT_ID: &str = "gatehouse-docs";
pub const DOCS_REDIRECT_PATH: &str = "/docs/oauth2-redirect";

/// The live sign-in of this browser, if any.
async fn browser_sign_in(
    state: &AppState,
    req: &Request,
) -> Result<Option<BrowserSignIn>, AccountsError> {
    match cookie(req, SESSION_COOKIE) {
        Some(value) => state.accounts.browser_session(value).await,
        None => Ok(None),
    }
}

/// A code for `sign_in`, sent back to the client.
async fn issue_code(
    state: &AppState,
    auth: &Authorization,
    sign_in: &BrowserSignIn,
) -> SignInResponse {
    let request = CodeRequest {
        client_id: &auth.client.client_id,
        redirect_uri: &auth.redirect_uri,
        code_challenge: &auth.code_challenge,
        granted: auth.granted,
        nonce: auth.nonce.as_deref(),
    };
    match state.accounts.issue_code(sign_in, request).await {
        Ok(code) => back_to_client(
            &auth.redirect_uri,
            &[("code", &code)],
            auth.state.as_deref(),
            &auth.issuer,
        ),
        Err(e) => unavailable(&e),
    }
}

/// The signed-in browser's next step: consent for a third-party client (or
/// `prompt=consent`), else the code.
async fn after_sign_in(
    state: &AppState,
    req: &Request,
    auth: &Authorization,
    sign_in: &BrowserSignIn,
) -> SignInResponse {
    if !auth.client.first_party || auth.prompt.consent {
        if auth.prompt.none {
            return refuse(
                auth,
                "consent_required",
                "The user has not allowed this client",
            );
        }
        return SignInResponse::Page(consent_page(state, req, auth, sign_in));
    }
    issue_code(state, auth, sign_in).await
}

fn refuse(auth: &Authorization, error: &str, description: &str) -> SignInResponse {
    error_redirect(
        &auth.redirect_uri,
        auth.state.as_deref(),
        &auth.issuer,
        error,
        description,
    )
}

/// Whether `sign_in` may be used for `auth` without signing in again.
fn sign_in_fits(auth: &Authorization, sign_in: &BrowserSignIn) -> bool {
    !auth.prompt.login && auth.max_age.is_none_or(|max_age| sign_in.within(max_age))
}

#[derive(Default)]
pub struct AuthorizeApi;

#[OpenApi]
impl AuthorizeApi {
    /// Sign in with gatehouse (authorization code with PKCE)
    ///
    /// The authorization endpoint of OAuth 2.1 and OpenID Connect: a browser is sent here
    /// by a registered client with `response_type=code`, `client_id`, `redirect_uri`
    /// (exactly as registered), `code_challenge` and `code_challenge_method=S256` (PKCE is
    /// required), and optionally `scope`, `state`, `nonce`, `prompt` (`none`, `login`,
    /// `consent`) and `max_age`. The person signs in on gatehouse's login page (once per
    /// browser session), allows a third-party client on the consent page, and is sent
    /// back to `redirect_uri` with `code`, `state` and `iss`, which the client exchanges
    /// at `POST /token` (`grant_type=authorization_code`). An unknown client or redirect
    /// URI gets an error page, never a redirect.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/authorize", method = "get", operation_id = "authorize")]
    async fn authorize(
        &self,
        app: Data<&AppState>,
        req: &Request,
        /// Always `code`.
        #[oai(name = "response_type")]
        _response_type: Query<Option<String>>,
        /// The client's id, as registered.
        #[oai(name = "client_id")]
        _client_id: Query<Option<String>>,
        /// One of the client's registered redirect URIs, exactly; may be left out when the
        /// client registered only one.
        #[oai(name = "redirect_uri")]
        _redirect_uri: Query<Option<String>>,
        /// Space-separated scopes: the service's (`me`, `items`, ...) and OpenID Connect's
        /// (`openid`, `profile`, `email`), each registered for the client.
        #[oai(name = "scope")]
        _scope: Query<Option<String>>,
        /// Echoed back with the code or the error; a client checks it (CSRF).
        #[oai(name = "state")]
        _state: Query<Option<String>>,
        /// BASE64URL(SHA256(code_verifier)) (RFC 7636 §4.2).
        #[oai(name = "code_challenge")]
        _code_challenge: Query<Option<String>>,
        /// Always `S256`.
        #[oai(name = "code_challenge_method")]
        _code_challenge_method: Query<Option<String>>,
        /// Echoed in the id token (OpenID Connect).
        #[oai(name = "nonce")]
        _nonce: Query<Option<String>>,
        /// `none` (answer at once, `login_required` or `consent_required` if the person
        /// would have to act), `login` (sign in again), `consent` (ask again).
        #[oai(name = "prompt")]
        _prompt: Query<Option<String>>,
        /// Seconds: an older sign-in signs in again.
        #[oai(name = "max_age")]
        _max_age: Query<Option<String>>,
    ) -> SignInResponse {
        let auth = match check_request(&app, req, Params::from_query(req)).await {
            Ok(auth) => auth,
            Err(answer) => return answer,
        };
        let sign_in = match browser_sign_in(&app, req).await {
            Ok(found) => found.filter(|s| sign_in_fits(&auth, s)),
            Err(e) => return unavailable(&e),
        };
        match sign_in {
            Some(sign_in) => after_sign_in(&app, req, &auth, &sign_in).await,
            None if auth.prompt.none => {
                refuse(&auth, "login_required", "The user is not signed in")
            }
            None => SignInResponse::Page(login_page(&app, req, &auth, StatusCode::OK, "", &[])),
        }
    }

    /// Sign out (OpenID Connect RP-Initiated Logout)
    ///
    /// Ends this browser's sign-in on gatehouse (the tokens clients hold live on until
    /// they are revoked or expire). With `post_logout_redirect_uri` registered for the
    /// client (named by `client_id`, or by the audience of `id_token_hint`), the browser
    /// is sent there at once with `state`; otherwise a page says the person is signed
    /// out.
    #[oai(path = "/logout", method = "get", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        req: &Request,
        /// An id token gatehouse issued to the client (expired ones are accepted).
        id_token_hint: Query<Option<String>>,
        /// Where to send the browser afterwards: one the client registered, exactly.
        post_logout_redirect_uri: Query<Option<String>>,
        /// The client's id, when no `id_token_hint` is sent.
        client_id: Query<Option<String>>,
        /// Echoed back to `post_logout_redirect_uri`.
        #[oai(name = "state")]
        logout_state: Query<Option<String>>,
    ) -> SignInResponse {
        let url = ServiceUrl::of(req, &state);
        if let Some(value) = cookie(req, SESSION_COOKIE) {
            if let Err(e) = state.accounts.end_browser_session(value).await {
                return unavailable(&e);
            }
        }
        let clear = set_cookie(&state, &url, SESSION_COOKIE, "", 0);
        let client_id = client_id.0.or_else(|| {
            id_token_hint
                .0
                .as_deref()
                .and_then(|hint| state.accounts.tokens().id_token_audience(hint))
        });
        let target = match (post_logout_redirect_uri.0, client_id) {
            (Some(uri), Some(client_id)) => match find_client(&state, &url, &client_id).await {
                Ok(Some(client)) if client.has_post_logout_redirect_uri(&uri) => Some(uri),
                Ok(_) => None,
                Err(e) => return unavailable(&e),
            },
            _ => None,
        };
        let answer = match target {
            Some(uri) => {
                let params: Vec<(&str, &str)> = logout_state
                    .0
                    .as_deref()
                    .map(|s| ("state", s))
                    .into_iter()
                    .collect();
                let location = if params.is_empty() {
                    uri
                } else {
                    with_query(&uri, &params)
                };
                SignInResponse::to_client(location)
            }
            None => SignInResponse::Page(Page::message(
                StatusCode::OK,
                "You are signed out",
                "You are signed out of this service in this browser. You can close this page.",
            )),
        };
        answer.with_cookie(clear)
    }
}
