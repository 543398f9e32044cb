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

use std::fmt::Write as _;

use poem::{
    http::{header, StatusCode},
    web::Data,
    IntoResponse, Request, RequestBody, Response,
};
use poem_openapi::{
    param::Query,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::Type,
    ApiResponse, OpenApi,
};
use secrecy::SecretString;
use subtle::ConstantTimeEq;
use url::Url;

use super::{
    client_addr::client_ip,
    form::{parse_fields, read_body, Fields},
    pages::{Page, SignInForm},
    service_url::ServiceUrl,
    AppState,
};
use crate::{
    accounts::{
        authorize::{BrowserSignIn, CodeRequest},
        clients::Client,
        openid_scopes::Granted,
        AccountsError, Scope,
    },
    auth::{email_token::new_email_token, pkce, token::unix_now},
};

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

/// The parameters of an authorization request: what the pages carry as hidden fields.
const REQUEST_PARAMS: [&str; 12] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
    "max_age",
    "response_mode",
    "login_hint",
];
/// Longest value of a parameter: URLs and states of real clients stay far below.
const MAX_PARAM_CHARS: usize = 2048;

/// The parameters as sent, in order (repeated ones kept, to be refused).
#[derive(Debug, Clone, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn from_query(req: &Request) -> Self {
        Self(
            form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn from_fields(fields: &Fields) -> Self {
        Self(
            REQUEST_PARAMS
                .iter()
                .filter_map(|&name| Some((name.to_owned(), fields.get(name)?.to_owned())))
                .collect(),
        )
    }

    /// The value of `name`; an empty one counts as absent (RFC 6749 §3.1).
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A request parameter sent more than once (RFC 6749 §3.1), or one too long.
    fn malformed(&self) -> Option<String> {
        REQUEST_PARAMS.iter().find_map(|&name| {
            let mut values = self.0.iter().filter(|(k, _)| k == name);
            let first = values.next()?;
            if values.next().is_some() {
                Some(format!("The {name} parameter is sent more than once"))
            } else if first.1.chars().count() > MAX_PARAM_CHARS {
                Some(format!("The {name} parameter is too long"))
            } else {
                None
            }
        })
    }

    /// The request parameters, to carry as hidden fields.
    fn hidden(&self) -> Vec<(String, String)> {
        REQUEST_PARAMS
            .iter()
            .filter_map(|&name| Some((name.to_owned(), self.get(name)?.to_owned())))
            .collect()
    }
}

/// `prompt` (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

/// A checked authorization request.
#[derive(Debug)]
struct Authorization {
    client: Client,
    redirect_uri: String,
    state: Option<String>,
    granted: Granted,
    code_challenge: String,
    nonce: Option<String>,
    prompt: Prompt,
    max_age: Option<i64>,
    params: Params,
    /// What the redirect's `iss` names.
    issuer: String,
}

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
    fn to_client(location: String) -> Self {
        Self::Redirect {
            status: StatusCode::FOUND,
            location,
            cookies: Vec::new(),
        }
    }

    fn with_cookie(self, cookie: String) -> Self {
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
    fn after_post(self) -> Self {
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
const SIGN_IN_STATUSES: [(u16, &str, &str); 5] = [
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

/// `name`'s value among the request's cookies.
fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
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
fn set_cookie(state: &AppState, url: &ServiceUrl, name: &str, value: &str, max_age: u64) -> String {
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

/// The client `client_id` names: a registered one, or Swagger UI's built-in one, whose
/// redirect URI is this service's own `/docs/oauth2-redirect`.
async fn find_client(
    state: &AppState,
    url: &ServiceUrl,
    client_id: &str,
) -> Result<Option<Client>, AccountsError> {
    if client_id == DOCS_CLIENT_ID {
        return Ok(Some(docs_client(url)));
    }
    state.accounts.client(client_id).await
}

/// Swagger UI's client: public, first-party, any scope of the service.
pub fn docs_client(url: &ServiceUrl) -> Client {
    Client {
        client_id: DOCS_CLIENT_ID.to_owned(),
        client_name: "gatehouse API documentation".to_owned(),
        confidential: false,
        first_party: true,
        redirect_uris: vec![format!("{}{DOCS_REDIRECT_PATH}", url.base())],
        post_logout_redirect_uris: Vec::new(),
        scopes: Scope::ALL
            .iter()
            .map(|s| s.name().to_owned())
            .chain(["openid", "profile", "email"].map(str::to_owned))
            .collect(),
        created_at: chrono::DateTime::UNIX_EPOCH,
    }
}

/// `uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
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
fn origin_of(uri: &str) -> String {
    Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The page of a failure that is not the person's doing.
fn unavailable(e: &AccountsError) -> SignInResponse {
    tracing::error!(error = %e, "sign-in flow failed");
    SignInResponse::Page(Page::unavailable())
}

fn error_page(heading: &str, text: &str) -> SignInResponse {
    SignInResponse::Page(Page::message(StatusCode::BAD_REQUEST, heading, text))
}

/// An OAuth error sent back to the client (RFC 6749 §4.1.2.1, RFC 9207).
fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> SignInResponse {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    SignInResponse::to_client(with_query(redirect_uri, &params))
}

/// Checks an authorization request: the client and redirect URI first (an error page),
/// then the rest (an error sent back to the client).
async fn check_request(
    state: &AppState,
    req: &Request,
    params: Params,
) -> Result<Authorization, SignInResponse> {
    let url = ServiceUrl::of(req, state);
    let issuer = url.issuer().to_owned();
    let unknown_client = || {
        error_page(
            "Unknown application",
            "The application that sent you here is not registered with this service. Go back \
             and tell its developers.",
        )
    };
    let client_id = match params.get("client_id") {
        Some(id) if id.len() <= MAX_PARAM_CHARS => id,
        _ => return Err(unknown_client()),
    };
    let client = match find_client(state, &url, client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(unknown_client()),
        Err(e) => return Err(unavailable(&e)),
    };
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.has_redirect_uri(uri) => uri.to_owned(),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        _ => {
            return Err(error_page(
                "Unregistered redirect address",
                "The application asked to send you back to an address it has not registered \
                 with this service, so you are not sent there. Go back and tell its developers.",
            ))
        }
    };
    let state_param = params.get("state").map(str::to_owned);
    let refuse = |error: &str, description: &str| {
        error_redirect(
            &redirect_uri,
            state_param.as_deref(),
            &issuer,
            error,
            description,
        )
    };
    if let Some(problem) = params.malformed() {
        return Err(refuse("invalid_request", &problem));
    }
    if params.get("request").is_some() {
        return Err(refuse(
            "request_not_supported",
            "Request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(refuse(
            "request_uri_not_supported",
            "Request objects are not supported",
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return Err(refuse(
                "invalid_request",
                "The response_type parameter is missing",
            ))
        }
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "Only response_type=code is supported",
            ))
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(refuse(
            "invalid_request",
            "Only response_mode=query is supported",
        ));
    }
    let Some(code_challenge) = params.get("code_challenge") else {
        return Err(refuse(
            "invalid_request",
            "PKCE is required: send code_challenge and code_challenge_method=S256",
        ));
    };
    if params.get("code_challenge_method") != Some(pkce::METHOD) {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        ));
    }
    if !pkce::is_s256_challenge(code_challenge) {
        return Err(refuse(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)",
        ));
    }
    let granted = match state
        .accounts
        .requested_scopes(&client, params.get("scope"))
    {
        Ok(granted) => granted,
        Err(e) => return Err(refuse("invalid_scope", &e.to_string())),
    };
    let mut prompt = Prompt::default();
    for value in params.get("prompt").unwrap_or_default().split_whitespace() {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            _ => return Err(refuse("invalid_request", "Unknown prompt value")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(refuse(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match params.get("max_age").map(str::parse::<u32>) {
        None => None,
        Some(Ok(secs)) => Some(i64::from(secs)),
        Some(Err(_)) => {
            return Err(refuse(
                "invalid_request",
                "max_age must be a number of seconds",
            ))
        }
    };
    Ok(Authorization {
        code_challenge: code_challenge.to_owned(),
        nonce: params.get("nonce").map(str::to_owned),
        client,
        redirect_uri,
        state: state_param,
        granted,
        prompt,
        max_age,
        params,
        issuer,
    })
}

/// The CSRF token of this browser's forms: the cookie's, or a new one (and its cookie).
fn csrf_token(state: &AppState, req: &Request) -> (String, Option<String>) {
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
fn csrf_matches(req: &Request, fields: &Fields) -> bool {
    match (cookie(req, CSRF_COOKIE), fields.get("csrf_token")) {
        (Some(cookie), Some(sent)) => bool::from(cookie.as_bytes().ct_eq(sent.as_bytes())),
        _ => false,
    }
}

/// The login page for `auth`, with `problems` (answered with `status`).
fn login_page(
    state: &AppState,
    req: &Request,
    auth: &Authorization,
    status: StatusCode,
    username: &str,
    problems: &[String],
) -> Page {
    let (csrf, set) = csrf_token(state, req);
    let params = auth.params.hidden();
    let action = format!("{}{LOGIN_PATH}", state.root_path);
    let form = SignInForm {
        action: &action,
        client_name: &auth.client.client_name,
        csrf_token: &csrf,
        params: &params,
        redirect_origin: &origin_of(&auth.redirect_uri),
    };
    let page = Page::login(status, form, username, problems);
    match set {
        Some(cookie) => page.with_cookie(cookie),
        None => page,
    }
}

/// The consent page for `auth`, for `sign_in`'s user.
fn consent_page(
    state: &AppState,
    req: &Request,
    auth: &Authorization,
    sign_in: &BrowserSignIn,
) -> Page {
    let (csrf, set) = csrf_token(state, req);
    let params = auth.params.hidden();
    let action = format!("{}{CONSENT_PATH}", state.root_path);
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
    let form = SignInForm {
        action: &action,
        client_name: &auth.client.client_name,
        csrf_token: &csrf,
        params: &params,
        redirect_origin: &origin_of(&auth.redirect_uri),
    };
    let page = Page::consent(form, &sign_in.user.username, &scopes);
    match set {
        Some(cookie) => page.with_cookie(cookie),
        None => page,
    }
}

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
        Ok(code) => {
            let mut params = vec![("code", code.as_str())];
            if let Some(s) = &auth.state {
                params.push(("state", s));
            }
            params.push(("iss", &auth.issuer));
            SignInResponse::to_client(with_query(&auth.redirect_uri, &params))
        }
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
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    !auth.prompt.login
        && auth
            .max_age
            .is_none_or(|max_age| now.saturating_sub(sign_in.auth_time) <= max_age)
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

/// The fields of a sign-in page's form, within the body limits; `None` answers itself.
async fn form_fields(req: &Request, mut body: RequestBody) -> Result<Fields, SignInResponse> {
    match read_body(req, &mut body).await {
        Ok(bytes) => Ok(parse_fields(req.content_type().unwrap_or_default(), bytes).await),
        Err(e) => {
            let status = match e {
                super::error::Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
                super::error::Error::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
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

/// The page of a form posted without this browser's CSRF token.
fn csrf_refused() -> SignInResponse {
    error_page(
        "This form has expired",
        "It was not sent from this browser's sign-in page, or the page is too old. Go back \
         to the application and sign in again.",
    )
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
async fn submitted_form(
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

async fn login_submitted(
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

async fn consent_submitted(
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
