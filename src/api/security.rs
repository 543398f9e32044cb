//! The `OAuth2PasswordBearer` security scheme: bearer extraction and its checker, and the
//! scopes an operation requires.
//!
//! An operation declares its scopes once, poem-openapi's way, on its bearer parameter:
//! `#[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer`. poem-openapi writes them into
//! the document (`security: [{"OAuth2PasswordBearer": ["me"]}]`, which Swagger UI reads);
//! the route table reads the same metadata and hands each request its operation's
//! scopes ([`RequiredScopes`]), which this extractor checks. One annotation, so the
//! document and the check cannot disagree.
//!
//! Implemented by hand rather than with `#[derive(SecurityScheme)]`: the derive parses
//! the header with a strict `Bearer <token>` parser that reports an empty token as a
//! missing header, while FastAPI (and SPEC) answer "Not authenticated" only for a missing
//! header or another scheme, and "Could not validate credentials" for any bearer value
//! that is not a valid token, empty included.

use std::sync::Arc;

use poem::{http::HeaderMap, Request, RequestBody};
use std::borrow::Cow;

use poem_openapi::{
    registry::{
        MetaOAuthFlow, MetaOAuthFlows, MetaOAuthScope, MetaSchema, MetaSchemaRef,
        MetaSecurityScheme, Registry,
    },
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OAuthScopes,
};
use serde_json::Value;

use super::error::Error;
pub use crate::accounts::Scope;
use crate::{
    accounts::{
        id_token::UserInfo,
        openid_scopes::{EMAIL, OPENID, PROFILE},
        AccountsError, SignedIn,
    },
    db::user,
};

/// The scopes of gatehouse, as poem-openapi's `#[oai(scope = ...)]` and the password
/// flow of the document list them.
impl OAuthScopes for Scope {
    fn meta() -> Vec<MetaOAuthScope> {
        Scope::ALL
            .into_iter()
            .map(|scope| MetaOAuthScope {
                name: scope.name(),
                description: Some(scope.description()),
            })
            .collect()
    }

    fn name(&self) -> &'static str {
        Scope::name(*self)
    }
}

/// A scope in a JSON body or response: a string schema `Scope` whose `enum` lists every
/// scope, so generated clients get a typed enum and validators know the names.
impl Type for Scope {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "Scope".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference("Scope".to_owned())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>("Scope".to_owned(), |_| MetaSchema {
            description: Some("A scope: what a token may be used for."),
            enum_items: Scope::ALL.iter().map(|s| Value::from(s.name())).collect(),
            ..MetaSchema::new("string")
        });
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for Scope {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let value = value.unwrap_or_default();
        value
            .as_str()
            .and_then(Scope::from_name)
            .ok_or_else(|| ParseError::expected_type(value))
    }
}

impl ToJSON for Scope {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.name()))
    }
}

/// The scopes the operation a request is routed to declares, attached by the route table.
#[derive(Debug, Clone)]
pub struct RequiredScopes(pub Arc<[&'static str]>);

pub const SCHEME_NAME: &str = "OAuth2PasswordBearer";
/// The token endpoint as the document names it; `ROOT_PATH` is prefixed when serving.
pub const TOKEN_URL: &str = "/token";
/// The authorization endpoint, as `TOKEN_URL`.
pub const AUTHORIZATION_URL: &str = "/authorize";
/// OpenID Connect's scopes, as the authorization-code flow lists them.
const OPENID_SCOPES: [(&str, &str); 3] = [
    (
        OPENID,
        "Sign in with OpenID Connect: an id token, and /userinfo.",
    ),
    (PROFILE, "With openid: the username and full name."),
    (
        EMAIL,
        "With openid: the email address and whether it is verified.",
    ),
];

/// The active user named by a valid bearer access token, and how they signed in: the
/// token's session (`None` for a token issued before gatehouse had sessions), when, and
/// with which methods.
pub struct OAuth2PasswordBearer(pub user::Model, pub SignedIn);

impl<'a> ApiExtractor<'a> for OAuth2PasswordBearer {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME_NAME,
            MetaSecurityScheme {
                ty: "oauth2",
                description: Some("OAuth2 password flow: POST username and password to the token URL, then send `Authorization: Bearer <access_token>`. Or the authorization-code flow with PKCE: sign in on gatehouse's own login page (Swagger UI's client is `gatehouse-docs`)."),
                name: None,
                key_in: None,
                scheme: None,
                bearer_format: None,
                flows: Some(MetaOAuthFlows {
                    implicit: None,
                    password: Some(MetaOAuthFlow {
                        authorization_url: None,
                        token_url: Some(TOKEN_URL),
                        refresh_url: None,
                        scopes: Scope::meta(),
                    }),
                    client_credentials: None,
                    authorization_code: Some(MetaOAuthFlow {
                        authorization_url: Some(AUTHORIZATION_URL),
                        token_url: Some(TOKEN_URL),
                        refresh_url: None,
                        scopes: Scope::meta()
                            .into_iter()
                            .chain(OPENID_SCOPES.iter().map(|(name, description)| {
                                MetaOAuthScope {
                                    name,
                                    description: Some(description),
                                }
                            }))
                            .collect(),
                    }),
                }),
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME_NAME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = super::app_state(req)?;
        // Fail closed: without its operation's scopes no request passes.
        let required = req.data::<RequiredScopes>().ok_or_else(|| {
            Error::Internal("the route table attached no required scopes".to_owned())
        })?;
        let token = bearer_token(req.headers())?;
        let user = state.accounts.current_user(token, &required.0).await;
        user.map(|current| Self(current.user, current.signed_in))
            .map_err(|e| bearer_refused(e, required.0.join(" ")))
    }
}

/// A refused bearer token's answer, its challenge naming the `required` scopes.
fn bearer_refused(e: AccountsError, required: String) -> poem::Error {
    match Error::from(e) {
        Error::InvalidToken { .. } => Error::InvalidToken { required },
        Error::InsufficientScope { .. } => Error::InsufficientScope { required },
        other => other,
    }
    .into()
}

/// What `/userinfo` answers for a valid bearer access token granted `openid`: the same
/// security scheme, checked by [`Accounts::userinfo`](crate::accounts::Accounts::userinfo).
pub struct OpenIdBearer(pub UserInfo);

impl<'a> ApiExtractor<'a> for OpenIdBearer {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <OAuth2PasswordBearer as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME_NAME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = super::app_state(req)?;
        let token = bearer_token(req.headers())?;
        state
            .accounts
            .userinfo(token)
            .await
            .map(Self)
            .map_err(|e| bearer_refused(e, OPENID.to_owned()))
    }
}

/// The credentials of `Authorization: Bearer <token>`, split as FastAPI does: the scheme
/// is matched case-insensitively and the rest, even empty, is the token.
fn bearer_token(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(Error::NotAuthenticated)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(token)
    } else {
        Err(Error::NotAuthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_token_may_be_empty() {
        assert_eq!(bearer_token(&headers("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer_token(&headers("bEaReR abc")).unwrap(), "abc");
        assert_eq!(bearer_token(&headers("Bearer ")).unwrap(), "");
        assert_eq!(bearer_token(&headers("Bearer")).unwrap(), "");
        assert!(matches!(
            bearer_token(&headers("Basic abc")),
            Err(Error::NotAuthenticated)
        ));
        assert!(matches!(
            bearer_token(&HeaderMap::new()),
            Err(Error::NotAuthenticated)
        ));
    }
}
