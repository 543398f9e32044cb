//! `POST /introspect`: token introspection (RFC 7662), for services that must see a
//! revocation at once rather than when the token expires.
//!
//! A missing `token` is FastAPI's 422 entry, not poem's plain-text 400: the form is read
//! by [`FormBody`].

use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    payload::Json,
    types::{Example, Password},
    ApiResponse, Object, OpenApi,
};
use secrecy::{ExposeSecret, SecretString};

use super::{
    error::{ApiError, Error, ErrorStatuses},
    form::{ErrorStyle, Fields, FormBody, FormRequest},
    security::{OAuth2PasswordBearer, Scope},
    AppState,
};

/// The introspection form as the OpenAPI document describes it.
#[derive(Debug, Object)]
#[oai(
    rename = "Body_introspect_token_introspect_post",
    example,
    skip_serializing_if_is_none
)]
pub struct IntrospectFormSchema {
    /// The access token to look at (a refresh token is `{"active": false}`: only
    /// gatehouse itself uses those).
    #[oai(validator(min_length = 1))]
    token: Password,
    /// `access_token` (the only kind there is to introspect); a hint only (RFC 7662
    /// §2.1), any value is accepted.
    token_type_hint: Option<String>,
}

impl Example for IntrospectFormSchema {
    fn example() -> Self {
        Self {
            token: Password("eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.e30.c2ln".to_owned()),
            token_type_hint: Some("access_token".to_owned()),
        }
    }
}

/// A validated introspection request.
pub struct IntrospectForm {
    pub token: SecretString,
}

impl FormRequest for IntrospectForm {
    type Schema = IntrospectFormSchema;

    fn from_fields(fields: &Fields) -> Result<Self, Error> {
        Ok(Self {
            token: SecretString::from(fields.required("token", ErrorStyle::FastApi)?),
        })
    }
}

/// What a token is (RFC 7662 §2.2). An inactive token is `{"active": false}` and nothing
/// more, whatever made it inactive.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct IntrospectionResponse {
    /// Whether the token would be accepted now: valid, unexpired, its user enabled and
    /// nothing revoked since it was issued.
    pub active: bool,
    /// The scopes the token may use now, space separated.
    pub scope: Option<String>,
    /// The username.
    pub username: Option<String>,
    /// Always `bearer`.
    pub token_type: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: Option<u64>,
    /// Issue time, Unix seconds.
    pub iat: Option<u64>,
    /// The username, as the token's `sub`.
    pub sub: Option<String>,
    /// The token's `iss`, when `JWT_ISSUER` is set.
    pub iss: Option<String>,
    /// The token's `aud`, when `JWT_AUDIENCE` is set.
    pub aud: Option<String>,
    /// The session the token belongs to (`sid`); ending it ends the token.
    pub sid: Option<String>,
}

impl IntrospectionResponse {
    fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            username: None,
            token_type: None,
            exp: None,
            iat: None,
            sub: None,
            iss: None,
            aud: None,
            sid: None,
        }
    }
}

impl Example for IntrospectionResponse {
    fn example() -> Self {
        Self {
            active: true,
            scope: Some("me items".to_owned()),
            username: Some("johndoe".to_owned()),
            token_type: Some("bearer".to_owned()),
            exp: Some(1_796_246_000),
            iat: Some(1_796_244_200),
            sub: Some("johndoe".to_owned()),
            iss: None,
            aud: None,
            sid: Some("Jq3r6m2bYV0n5i8xQ1fWcA".to_owned()),
        }
    }
}

#[derive(ApiResponse)]
pub enum IntrospectResponse {
    /// What the token is; `{"active": false}` for any token that would be refused.
    #[oai(status = 200)]
    Ok(
        Json<IntrospectionResponse>,
        /// `no-store`
        #[oai(header = "Cache-Control")]
        String,
    ),
}

pub enum IntrospectErrors {}

impl ErrorStatuses for IntrospectErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "Inactive user: the caller's account is disabled",
        ),
        (
            StatusCode::UNAUTHORIZED,
            "Not authenticated (no bearer token); the caller's token could not be \
             validated; or Not enough permissions (it lacks the `introspect` scope)",
        ),
        (
            StatusCode::REQUEST_TIMEOUT,
            "The request body did not arrive in time",
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body larger than 16 KiB",
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Error: `token` is missing or empty",
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage unavailable; retry later",
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error; the cause is logged, never shown",
        ),
    ];
}

#[derive(Default)]
pub struct IntrospectApi;

#[OpenApi]
impl IntrospectApi {
    /// Introspect a token
    ///
    /// RFC 7662, for a service that must see a revocation at once: send an access token
    /// as `token`, with your own bearer token holding the `introspect` scope. The answer
    /// is read from the database as of this request: a token whose user was disabled,
    /// deleted or had their tokens revoked (password change, `user revoke`), or whose
    /// session ended (`POST /revoke`, a reused refresh token, `DELETE
    /// /users/me/sessions/{id}`), is `{"active": false}` at once, on every replica.
    /// `scope` lists the scopes the token may use now.
    #[oai(
        path = "/introspect",
        method = "post",
        operation_id = "introspect_token_introspect_post"
    )]
    async fn introspect_token(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Introspect")] _caller: OAuth2PasswordBearer,
        FormBody(form): FormBody<IntrospectForm>,
    ) -> Result<IntrospectResponse, ApiError<IntrospectErrors>> {
        let settings = state.accounts.tokens();
        let answer = match state
            .accounts
            .introspect(form.token.expose_secret())
            .await?
        {
            None => IntrospectionResponse::inactive(),
            Some(token) => IntrospectionResponse {
                active: true,
                scope: Some(token.scope),
                username: Some(token.sub.clone()),
                token_type: Some("bearer".to_owned()),
                exp: Some(token.exp),
                iat: token.iat,
                sub: Some(token.sub),
                iss: settings.issuer().map(str::to_owned),
                aud: settings.audience().map(str::to_owned),
                sid: token.sid,
            },
        };
        Ok(IntrospectResponse::Ok(Json(answer), "no-store".to_owned()))
    }
}
