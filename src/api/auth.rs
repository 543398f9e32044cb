//! `POST /token`: the OAuth2 password grant, and the refresh grant (RFC 6749 §6).

use poem::{http::StatusCode, web::Data, Request};
use poem_openapi::{payload::Json, types::Example, ApiResponse, Object, OpenApi};
use secrecy::ExposeSecret;

use base64::Engine as _;

use super::{
    authorize::authenticate_client,
    client_addr::client_ip,
    error::{ApiError, Error, ErrorStatuses, BODY_TOO_LARGE, INTERNAL_ERROR, REQUEST_TIMEOUT},
    form::FormBody,
    service_url::ServiceUrl,
    token_form::{
        CodeRequestForm, OAuth2PasswordRequestForm, RefreshRequestForm, TokenRequestForm,
    },
    AppState,
};
use crate::accounts::{
    authorize::{CodeExchange, PresentedCode},
    Login, Origin,
};

/// An access token for the `Authorization: Bearer` header, and a refresh token.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct Token {
    /// A signed JWT: HS256, or EdDSA with a `kid` under `JWT_ALGORITHM=EdDSA`.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// The scopes granted, space separated (RFC 6749 §3.3): the requested ones the user
    /// holds.
    pub scope: String,
    /// Opaque; exchanged at this endpoint with `grant_type=refresh_token` for a new pair,
    /// once (RFC 6749 §6). Absent when the server issues no refresh tokens.
    pub refresh_token: Option<String>,
    /// The OpenID Connect id token (a JWT signed with RS256 or EdDSA): only from the
    /// authorization-code grant with scope `openid`.
    pub id_token: Option<String>,
}

impl Example for Token {
    fn example() -> Self {
        Token {
            access_token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqb2huZG9lIiwiZXhwIjoxNzk2MjQ2MDAwLCJpYXQiOjE3OTYyNDQyMDAsInZlciI6MH0.c2lnbmF0dXJl".to_owned(),
            token_type: "bearer".to_owned(),
            expires_in: 1800,
            scope: "me items".to_owned(),
            refresh_token: Some("dGhpcyBpcyBhbiBvcGFxdWUgcmVmcmVzaCB0b2tlbiEhIQ".to_owned()),
            id_token: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum TokenResponse {
    /// Access token issued. Not to be cached (RFC 6749 §5.1).
    #[oai(status = 200)]
    Ok(
        Json<Token>,
        /// `no-store`
        #[oai(header = "Cache-Control")]
        String,
        /// `no-cache`
        #[oai(header = "Pragma")]
        String,
    ),
}

pub enum LoginErrors {}

impl ErrorStatuses for LoginErrors {
    const OAUTH_400: bool = true;
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "Refresh or code grant refused, as an OAuth error (RFC 6749 §5.2): `invalid_grant` \
             (the refresh token is unknown, expired, revoked or already used, and a used one \
             ends its session; or the code is unknown, expired, another client's, for another \
             redirect URI or verifier, or already used, and a used one ends the session its \
             first exchange started), `invalid_scope` (more than the login granted), \
             `invalid_request` (a missing field, or client credentials sent twice), \
             `unsupported_grant_type` (refresh tokens are disabled); or \
             `{\"detail\": \"Email not verified\"}` (`REQUIRE_VERIFIED_EMAIL`: the password \
             is right, the user's address unverified)",
        ),
        (
            StatusCode::UNAUTHORIZED,
            "Incorrect username or password; for a user with TOTP on, Second factor required \
             (no `otp`) or Incorrect code (a wrong, used or replayed `otp`, counted as a failed \
             login); for the code grant, `{\"error\": \"invalid_client\"}` (an unknown \
             client, a wrong or missing secret of a confidential client, a secret sent by a \
             public one), with `WWW-Authenticate: Basic realm=\"gatehouse\"`",
        ),
        REQUEST_TIMEOUT,
        BODY_TOO_LARGE,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Error: a field is missing, empty or too long, or `grant_type` is not `password`",
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins for this username or from this address; no password is checked until `Retry-After` seconds have passed",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Server busy (password hashing saturated) or storage unavailable; retry later",
        ),
        INTERNAL_ERROR,
    ];
}

#[derive(Default)]
pub struct TokenApi;

#[OpenApi]
impl TokenApi {
    /// Log in for an access token
    ///
    /// The OAuth2 password grant: send `username` and `password` as a form, get a bearer
    /// token to put in `Authorization: Bearer <access_token>`, and a `refresh_token`.
    /// `grant_type`, when sent, must be `password`; `scope` lists the scopes wanted, space
    /// separated: the token gets those the user holds (unknown ones are left out), and
    /// without `scope` the configured `DEFAULT_SCOPES`, else every scope the user holds.
    /// `client_id` and `client_secret` are accepted and ignored. A user with TOTP on also
    /// sends `otp`: a current code of their authenticator app or a recovery code. Each login
    /// starts a session (see `/users/me/sessions/`).
    /// After too many failed logins for a username or from an address, the answer is 429
    /// until the `Retry-After` seconds have passed, whatever the password.
    ///
    /// The refresh grant (RFC 6749 §6): `grant_type=refresh_token&refresh_token=...`, and
    /// optionally a `scope` within the one granted at login, returns a new access token
    /// and a new refresh token; the one sent is spent. Sending a spent one again ends the
    /// session (RFC 9700 §4.14.2). Its errors are OAuth errors: 400
    /// `{"error": ..., "error_description": ...}`.
    #[oai(
        path = "/token",
        method = "post",
        operation_id = "login_for_access_token_token_post"
    )]
    async fn login_for_access_token(
        &self,
        state: Data<&AppState>,
        req: &Request,
        FormBody(form): FormBody<TokenRequestForm>,
    ) -> Result<TokenResponse, ApiError<LoginErrors>> {
        let (login, id_token) = match form {
            TokenRequestForm::Password(form) => (password_grant(&state, req, form).await?, None),
            TokenRequestForm::Refresh(form) => (refresh_grant(&state, form).await?, None),
            TokenRequestForm::Code(form) => {
                let exchange = code_grant(&state, req, form).await?;
                (exchange.login, exchange.id_token)
            }
        };
        let token = Token {
            access_token: login.access_token,
            token_type: "bearer".to_owned(),
            expires_in: login.expires_in,
            scope: login.scope.to_string(),
            refresh_token: login.refresh_token,
            id_token,
        };
        Ok(TokenResponse::Ok(
            Json(token),
            "no-store".to_owned(),
            "no-cache".to_owned(),
        ))
    }
}

/// Where a request comes from, kept with the session it starts.
fn origin(state: &AppState, req: &Request) -> Origin {
    Origin {
        client: client_ip(req, &state.trusted_proxies),
        user_agent: req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

async fn password_grant(
    state: &AppState,
    req: &Request,
    form: OAuth2PasswordRequestForm,
) -> Result<Login, Error> {
    let origin = origin(state, req);
    Ok(state
        .accounts
        .login(
            &origin,
            &form.username,
            form.password,
            form.otp,
            &form.scopes,
        )
        .await?)
}

async fn refresh_grant(state: &AppState, form: RefreshRequestForm) -> Result<Login, Error> {
    let refreshed = state
        .accounts
        .refresh(form.refresh_token.expose_secret(), &form.scopes)
        .await?;
    Ok(refreshed?)
}

/// The authorization-code grant: the client authenticates (`client_secret_basic`,
/// `client_secret_post`, or a public client's `client_id` alone), then the code is
/// exchanged (see `Accounts::redeem_code`).
async fn code_grant(
    state: &AppState,
    req: &Request,
    form: CodeRequestForm,
) -> Result<CodeExchange, Error> {
    let basic = basic_credentials(req)?;
    let (client_id, secret) = match (&basic, &form.client_id) {
        (Some((id, _)), Some(form_id)) if id != form_id => {
            return Err(Error::invalid_request(
                "client_id differs from the client authenticated",
            ))
        }
        (Some(_), _) if form.client_secret.is_some() => {
            return Err(Error::invalid_request(
                "Use one way to authenticate the client, not two",
            ))
        }
        (Some((id, secret)), _) => (id.clone(), Some(secret.clone())),
        (None, Some(id)) => (
            id.clone(),
            form.client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
        ),
        (None, None) => return Err(Error::invalid_request("The client_id parameter is missing")),
    };
    let url = ServiceUrl::of(req, state);
    let client = authenticate_client(state, &url, &client_id, secret.as_deref()).await?;
    let presented = PresentedCode {
        code: &form.code,
        redirect_uri: &form.redirect_uri,
        code_verifier: form.code_verifier.expose_secret(),
    };
    let exchanged = state
        .accounts
        .redeem_code(&client, presented, &origin(state, req), url.issuer())
        .await?;
    Ok(exchanged?)
}

/// The client's credentials of `Authorization: Basic` (RFC 6749 §2.3.1: each
/// form-urlencoded before base64), if sent.
fn basic_credentials(req: &Request) -> Result<Option<(String, String)>, Error> {
    let Some(value) = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Error::invalid_request("Malformed Basic credentials"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| Error::invalid_request("Malformed Basic credentials"))?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}
