//! `/.well-known/`: what other services need to trust gatehouse's tokens without asking
//! it: the public keys (`jwks.json`, RFC 7517) and the server's metadata
//! (`oauth-authorization-server`, RFC 8414).

use poem::{http::StatusCode, web::Data, Request};
use poem_openapi::{payload::Json, types::Example, ApiResponse, Object, OpenApi};

use super::{
    error::{ApiError, ErrorStatuses, INTERNAL_ERROR},
    service_url::ServiceUrl,
    AppState,
};
use crate::{
    accounts::{clients::client_scope_names, signing_keys::PublishedKey, Scope},
    auth::keys::{KeyAlgorithm, PublicKeyParams},
};

/// A public key (RFC 7517 §4): Ed25519 as RFC 8037 §2 writes it (`kty` `OKP`, `crv`, `x`),
/// RSA as RFC 7518 §6.3.1 does (`kty` `RSA`, `n`, `e`).
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct JsonWebKey {
    /// `OKP` (octet key pair, Ed25519) or `RSA`.
    pub kty: String,
    /// `Ed25519`; with `OKP` only.
    pub crv: Option<String>,
    /// The Ed25519 public key, base64url; with `OKP` only.
    pub x: Option<String>,
    /// The RSA modulus, base64url; with `RSA` only.
    pub n: Option<String>,
    /// The RSA public exponent, base64url (`AQAB`); with `RSA` only.
    pub e: Option<String>,
    /// The key id tokens name in their header: the RFC 7638 thumbprint of this key.
    pub kid: String,
    /// `EdDSA` or `RS256`: the configured `JWT_ALGORITHM`.
    pub alg: String,
    /// Always `sig`.
    #[oai(rename = "use")]
    pub key_use: String,
}

impl JsonWebKey {
    fn new(kid: String, algorithm: KeyAlgorithm, params: PublicKeyParams) -> Self {
        let (kty, crv, x, n, e) = match params {
            PublicKeyParams::Ed25519 { x } => {
                ("OKP", Some("Ed25519".to_owned()), Some(x), None, None)
            }
            PublicKeyParams::Rsa { n, e } => ("RSA", None, None, Some(n), Some(e)),
        };
        Self {
            kty: kty.to_owned(),
            crv,
            x,
            n,
            e,
            kid,
            alg: algorithm.as_str().to_owned(),
            key_use: "sig".to_owned(),
        }
    }
}

impl From<PublishedKey> for JsonWebKey {
    fn from(key: PublishedKey) -> Self {
        Self::new(key.kid, key.algorithm, key.params)
    }
}

impl Example for JsonWebKey {
    fn example() -> Self {
        // RFC 8037 Appendix A.2 and A.3.
        Self::new(
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k".to_owned(),
            KeyAlgorithm::EdDsa,
            PublicKeyParams::Ed25519 {
                x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".to_owned(),
            },
        )
    }
}

/// The keys that verify gatehouse's tokens (RFC 7517 §5).
#[derive(Debug, Object)]
#[oai(example)]
pub struct JsonWebKeySet {
    /// Every key a live token may be signed with; empty under HS256, whose secret is
    /// never published.
    pub keys: Vec<JsonWebKey>,
}

impl Example for JsonWebKeySet {
    fn example() -> Self {
        Self {
            keys: vec![JsonWebKey::example()],
        }
    }
}

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// The public keys. Cacheable: a new key is published this long before it signs.
    #[oai(status = 200)]
    Ok(
        Json<JsonWebKeySet>,
        /// `public, max-age=<JWKS_MAX_AGE_SECS>`
        #[oai(header = "Cache-Control")]
        String,
    ),
}

pub enum WellKnownErrors {}

impl ErrorStatuses for WellKnownErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[INTERNAL_ERROR];
}

/// The authorization server's metadata (RFC 8414 §2).
#[derive(Debug, Object)]
#[oai(example)]
pub struct AuthorizationServerMetadata {
    /// `JWT_ISSUER` when set, else the service's URL: `PUBLIC_URL`, else the request's
    /// origin and `ROOT_PATH`. The other URLs start with `PUBLIC_URL` when it is set, else
    /// with the issuer.
    pub issuer: String,
    /// `GET /authorize`: the authorization-code flow with PKCE.
    pub authorization_endpoint: String,
    /// `POST /token`.
    pub token_endpoint: String,
    /// `GET|POST /userinfo` (OpenID Connect).
    pub userinfo_endpoint: String,
    /// `GET /logout` (OpenID Connect RP-Initiated Logout).
    pub end_session_endpoint: String,
    /// `POST /revoke` (RFC 7009).
    pub revocation_endpoint: String,
    /// `["none"]`: as for the token endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `POST /introspect` (RFC 7662).
    pub introspection_endpoint: String,
    /// `["Bearer"]`: the caller presents a bearer token with the `introspect` scope.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// `GET /.well-known/jwks.json`.
    pub jwks_uri: String,
    /// The scopes a token may carry: the service's, and OpenID Connect's (`openid`,
    /// `profile`, `email`) unless `JWT_ALGORITHM=HS256`, under which `openid` is refused.
    pub scopes_supported: Vec<String>,
    /// `["code"]`.
    pub response_types_supported: Vec<String>,
    /// `["query"]`.
    pub response_modes_supported: Vec<String>,
    /// `["authorization_code", "password", "refresh_token"]`; without `refresh_token`
    /// when `REFRESH_TOKEN_EXPIRE_DAYS` is 0.
    pub grant_types_supported: Vec<String>,
    /// `["client_secret_basic", "client_secret_post", "none"]`: confidential clients of
    /// the code grant send their secret; public ones (and the password grant) nothing.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `["S256"]`: PKCE is required, `plain` refused.
    pub code_challenge_methods_supported: Vec<String>,
    /// `true`: every answer of the authorization endpoint carries `iss` (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
    /// `["public"]`: `sub` is the user's permanent id, the same for every client.
    pub subject_types_supported: Vec<String>,
    /// The algorithm of id tokens: `["RS256"]` or `["EdDSA"]`; empty under HS256, which
    /// signs no id tokens.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// The claims of id tokens and `/userinfo`.
    pub claims_supported: Vec<String>,
    /// `["none", "login", "consent"]`.
    pub prompt_values_supported: Vec<String>,
    /// The API documentation (Swagger UI).
    pub service_documentation: String,
}

impl AuthorizationServerMetadata {
    /// The metadata with `issuer`, whose URLs start with `base`; `id_token_algorithm`:
    /// what signs id tokens (`None` under HS256).
    fn new(
        issuer: String,
        base: &str,
        refresh_tokens: bool,
        id_token_algorithm: Option<&str>,
    ) -> Self {
        let url = |path: &str| format!("{base}{path}");
        let list = |items: &[&str]| items.iter().map(|&s| s.to_owned()).collect();
        // `openid` (and with it `profile` and `email`) only where id tokens are signed.
        let scopes = if id_token_algorithm.is_some() {
            client_scope_names().map(str::to_owned).collect()
        } else {
            Scope::ALL.iter().map(|s| s.name().to_owned()).collect()
        };
        let mut grant_types: Vec<String> = list(&["authorization_code", "password"]);
        if refresh_tokens {
            grant_types.push("refresh_token".to_owned());
        }
        Self {
            authorization_endpoint: url("/authorize"),
            token_endpoint: url("/token"),
            userinfo_endpoint: url("/userinfo"),
            end_session_endpoint: url("/logout"),
            revocation_endpoint: url("/revoke"),
            revocation_endpoint_auth_methods_supported: list(&["none"]),
            introspection_endpoint: url("/introspect"),
            introspection_endpoint_auth_methods_supported: list(&["Bearer"]),
            jwks_uri: url("/.well-known/jwks.json"),
            scopes_supported: scopes,
            response_types_supported: list(&["code"]),
            response_modes_supported: list(&["query"]),
            grant_types_supported: grant_types,
            token_endpoint_auth_methods_supported: list(&[
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]),
            code_challenge_methods_supported: list(&["S256"]),
            authorization_response_iss_parameter_supported: true,
            subject_types_supported: list(&["public"]),
            id_token_signing_alg_values_supported: id_token_algorithm
                .map(|alg| vec![alg.to_owned()])
                .unwrap_or_default(),
            claims_supported: list(&[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "at_hash",
                "azp",
                "name",
                "preferred_username",
                "email",
                "email_verified",
            ]),
            prompt_values_supported: list(&["none", "login", "consent"]),
            service_documentation: url("/docs"),
            issuer,
        }
    }
}

impl Example for AuthorizationServerMetadata {
    fn example() -> Self {
        Self::new(
            "https://auth.example.com".to_owned(),
            "https://auth.example.com",
            true,
            Some("RS256"),
        )
    }
}

#[derive(ApiResponse)]
pub enum MetadataResponse {
    /// The metadata.
    #[oai(status = 200)]
    Ok(
        Json<AuthorizationServerMetadata>,
        /// `no-store` when the URLs come from the request (neither `PUBLIC_URL` nor
        /// `JWT_ISSUER` is set); `public, max-age=3600` when those settings pin them.
        #[oai(header = "Cache-Control")]
        String,
        /// When the URLs come from the request: `Host`, and `X-Forwarded-Host,
        /// X-Forwarded-Proto` too when `TRUSTED_PROXIES` is set. Absent when they are
        /// pinned.
        #[oai(header = "Vary")]
        Option<String>,
    ),
}

#[derive(Default)]
pub struct WellKnownApi;

#[OpenApi]
impl WellKnownApi {
    /// Read the public keys (JWKS)
    ///
    /// The JSON Web Key Set of RFC 7517 with the keys that sign tokens when
    /// `JWT_ALGORITHM` is `EdDSA` (Ed25519) or `RS256` (RSA): the active key, the next one
    /// (published before it signs) and retired ones (until their last token has expired).
    /// A resource server verifies a token with the key its header's `kid` names. Under
    /// HS256, `{"keys":[]}`.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        operation_id = "read_jwks_well_known_jwks_json_get"
    )]
    async fn read_jwks(
        &self,
        state: Data<&AppState>,
    ) -> Result<JwksResponse, ApiError<WellKnownErrors>> {
        let keys = state
            .accounts
            .published_keys()
            .await
            .into_iter()
            .map(JsonWebKey::from)
            .collect();
        Ok(JwksResponse::Ok(
            Json(JsonWebKeySet { keys }),
            format!("public, max-age={}", state.jwks_max_age.as_secs()),
        ))
    }

    /// Read the authorization server metadata
    ///
    /// RFC 8414's document: the issuer, the endpoints, the grant types, scopes and
    /// authentication methods, for OAuth libraries that configure themselves from it.
    /// Its URLs start with `PUBLIC_URL` when set, else with `JWT_ISSUER` when set (which
    /// is also the `issuer`); with neither, with the URL the request was sent to (the
    /// right-most `X-Forwarded-Proto`/`X-Forwarded-Host` from a trusted proxy) and
    /// `ROOT_PATH`, and the answer must not be cached.
    #[oai(
        path = "/.well-known/oauth-authorization-server",
        method = "get",
        operation_id = "read_authorization_server_metadata_well_known_oauth_authorization_server_get"
    )]
    async fn read_metadata(
        &self,
        state: Data<&AppState>,
        req: &Request,
    ) -> Result<MetadataResponse, ApiError<WellKnownErrors>> {
        Ok(metadata(&state, req))
    }

    /// Read the OpenID Connect discovery document
    ///
    /// OpenID Connect Discovery 1.0: the same document as
    /// `/.well-known/oauth-authorization-server`, which already carries the OpenID
    /// Connect fields (the userinfo and end-session endpoints, the id token's algorithm,
    /// the claims). Under `JWT_ALGORITHM=HS256` it lists no id-token algorithm and no
    /// `openid` scope: `openid` is refused there.
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        operation_id = "read_openid_configuration_well_known_openid_configuration_get"
    )]
    async fn read_openid_configuration(
        &self,
        state: Data<&AppState>,
        req: &Request,
    ) -> Result<MetadataResponse, ApiError<WellKnownErrors>> {
        Ok(metadata(&state, req))
    }
}

fn metadata(state: &AppState, req: &Request) -> MetadataResponse {
    let url = ServiceUrl::of(req, state);
    let tokens = state.accounts.tokens();
    let algorithm = tokens
        .signs_id_tokens()
        .then(|| tokens.algorithm().as_str());
    let metadata = AuthorizationServerMetadata::new(
        url.issuer().to_owned(),
        url.base(),
        state.accounts.issues_refresh_tokens(),
        algorithm,
    );
    MetadataResponse::Ok(Json(metadata), url.cache_control(), url.vary(state))
}
