//! `POST /revoke`: token revocation (RFC 7009).
//!
//! A missing `token` is an OAuth `invalid_request` (RFC 7009 §2.2.1), not poem's
//! plain-text 400: the form is read by [`FormBody`].

use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    types::{Example, Password},
    ApiResponse, Object, OpenApi,
};
use secrecy::{ExposeSecret, SecretString};

use super::{
    error::{ApiError, Error, ErrorStatuses},
    form::{ErrorStyle, Fields, FormBody, FormRequest},
    AppState,
};

/// The revocation form as the OpenAPI document describes it.
#[derive(Debug, Object)]
#[oai(
    rename = "Body_revoke_token_revoke_post",
    example,
    skip_serializing_if_is_none
)]
pub struct RevokeFormSchema {
    /// A refresh token or an access token issued by this server.
    #[oai(validator(min_length = 1))]
    token: Password,
    /// `refresh_token` or `access_token`: which kind `token` is, as a hint only (RFC 7009
    /// §2.1); any other value is ignored.
    token_type_hint: Option<String>,
    /// Accepted and ignored: gatehouse's clients are public.
    client_id: Option<String>,
}

impl Example for RevokeFormSchema {
    fn example() -> Self {
        Self {
            token: Password("dGhpcyBpcyBhbiBvcGFxdWUgcmVmcmVzaCB0b2tlbiEhIQ".to_owned()),
            token_type_hint: Some("refresh_token".to_owned()),
            client_id: None,
        }
    }
}

/// A validated revocation request.
pub struct RevokeForm {
    pub token: SecretString,
    pub token_type_hint: Option<String>,
}

impl FormRequest for RevokeForm {
    type Schema = RevokeFormSchema;

    fn from_fields(fields: &Fields) -> Result<Self, Error> {
        Ok(Self {
            token: SecretString::from(fields.required("token", ErrorStyle::OAuth)?),
            token_type_hint: fields.get("token_type_hint").map(str::to_owned),
        })
    }
}

#[derive(ApiResponse)]
pub enum RevokeResponse {
    /// The token's session is ended, or the token was unknown or already revoked: the
    /// answer is the same (RFC 7009 §2.2).
    #[oai(status = 200)]
    Ok,
}

pub enum RevokeErrors {}

impl ErrorStatuses for RevokeErrors {
    const OAUTH_400: bool = true;
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "`invalid_request`: no `token` was sent (RFC 7009 §2.2.1)",
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
pub struct RevokeApi;

#[OpenApi]
impl RevokeApi {
    /// Revoke a token
    ///
    /// RFC 7009: send a refresh token or an access token as `token`; the session it
    /// belongs to ends at once, with every refresh and access token of it, on every
    /// replica. `token_type_hint` (`refresh_token` or `access_token`) only says which kind
    /// to look for first. Unknown, expired and already revoked tokens get the same empty
    /// 200. No client authentication: gatehouse's clients are public, as for `/token`.
    #[oai(
        path = "/revoke",
        method = "post",
        operation_id = "revoke_token_revoke_post"
    )]
    async fn revoke_token(
        &self,
        state: Data<&AppState>,
        FormBody(form): FormBody<RevokeForm>,
    ) -> Result<RevokeResponse, ApiError<RevokeErrors>> {
        state
            .accounts
            .revoke(form.token.expose_secret(), form.token_type_hint.as_deref())
            .await?;
        Ok(RevokeResponse::Ok)
    }
}
