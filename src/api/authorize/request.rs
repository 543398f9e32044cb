//! An authorization request: its parameters as sent (the query, or a page's hidden
//! fields), checked whole on every step, and the clients it may name.

use poem::Request;

use super::{
    response::{error_page, error_redirect, unavailable, SignInResponse},
    DOCS_CLIENT_ID, DOCS_REDIRECT_PATH,
};
use crate::{
    accounts::{
        clients::{client_scope_names, Client},
        openid_scopes::Granted,
        AccountsError,
    },
    api::{form::Fields, service_url::ServiceUrl, AppState},
    auth::pkce,
};

/// The parameters of an authorization request: what the pages carry as hidden fields.
pub(super) const REQUEST_PARAMS: [&str; 12] = [
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
pub(super) const MAX_PARAM_CHARS: usize = 2048;

/// The parameters as sent, in order (repeated ones kept, to be refused).
#[derive(Debug, Clone, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn from_query(req: &Request) -> Self {
        Self(
            form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(super) fn from_fields(fields: &Fields) -> Self {
        Self(
            REQUEST_PARAMS
                .iter()
                .filter_map(|&name| Some((name.to_owned(), fields.get(name)?.to_owned())))
                .collect(),
        )
    }

    /// The value of `name`; an empty one counts as absent (RFC 6749 §3.1).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A request parameter sent more than once (RFC 6749 §3.1), or one too long.
    pub(super) fn malformed(&self) -> Option<String> {
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
    pub(super) fn hidden(&self) -> Vec<(String, String)> {
        REQUEST_PARAMS
            .iter()
            .filter_map(|&name| Some((name.to_owned(), self.get(name)?.to_owned())))
            .collect()
    }
}

/// `prompt` (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Prompt {
    pub(super) none: bool,
    pub(super) login: bool,
    pub(super) consent: bool,
}

/// A checked authorization request.
#[derive(Debug)]
pub(super) struct Authorization {
    pub(super) client: Client,
    pub(super) redirect_uri: String,
    pub(super) state: Option<String>,
    pub(super) granted: Granted,
    pub(super) code_challenge: String,
    pub(super) nonce: Option<String>,
    pub(super) prompt: Prompt,
    pub(super) max_age: Option<i64>,
    pub(super) params: Params,
    /// What the redirect's `iss` names.
    pub(super) issuer: String,
}

/// The client `client_id` names: a registered one, or Swagger UI's built-in one, whose
/// redirect URI is this service's own `/docs/oauth2-redirect`.
pub(super) async fn find_client(
    state: &AppState,
    url: &ServiceUrl,
    client_id: &str,
) -> Result<Option<Client>, AccountsError> {
    if client_id == DOCS_CLIENT_ID {
        return Ok(Some(docs_client(url)));
    }
    state.accounts.client(client_id).await
}

/// The client `client_id` names, authenticated with `secret` at the token endpoint
/// (RFC 6749 §2.3): a registered one by the accounts' rules, or Swagger UI's built-in
/// public one, which sends no secret.
pub async fn authenticate_client(
    state: &AppState,
    url: &ServiceUrl,
    client_id: &str,
    secret: Option<&str>,
) -> Result<Client, AccountsError> {
    if client_id == DOCS_CLIENT_ID && secret.is_none() {
        return Ok(docs_client(url));
    }
    state.accounts.authenticate_client(client_id, secret).await
}

/// Swagger UI's client: public, first-party, any scope of the service.
fn docs_client(url: &ServiceUrl) -> Client {
    Client {
        client_id: DOCS_CLIENT_ID.to_owned(),
        client_name: "gatehouse API documentation".to_owned(),
        confidential: false,
        first_party: true,
        redirect_uris: vec![format!("{}{DOCS_REDIRECT_PATH}", url.base())],
        post_logout_redirect_uris: Vec::new(),
        scopes: client_scope_names().map(str::to_owned).collect(),
        created_at: chrono::DateTime::UNIX_EPOCH,
    }
}

/// Checks an authorization request: the client and redirect URI first (an error page),
/// then the rest (an error sent back to the client).
pub(super) async fn check_request(
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
