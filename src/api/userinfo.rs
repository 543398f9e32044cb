//! `GET|POST /userinfo` (OpenID Connect Core §5.3): the signed-in user's claims, for an
//! access token granted `openid`.

use poem::http::StatusCode;
use poem_openapi::{payload::Json, types::Example, ApiResponse, Object, OpenApi};

use super::{
    error::{ApiError, ErrorStatuses, INTERNAL_ERROR, STORAGE_UNAVAILABLE},
    security::OpenIdBearer,
};
use crate::accounts::id_token::UserInfo;

/// The user's claims (OpenID Connect Core §5.1): those of the scopes the token was
/// granted.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct UserInfoClaims {
    /// The user's permanent id: the id token's `sub`; never reused, unlike a username.
    pub sub: String,
    /// With `profile`: the full name, when the user has one.
    pub name: Option<String>,
    /// With `profile`: the username.
    pub preferred_username: Option<String>,
    /// With `email`: the address, when the user has one.
    pub email: Option<String>,
    /// With `email`: whether the user proved the address is theirs.
    pub email_verified: Option<bool>,
}

impl From<UserInfo> for UserInfoClaims {
    fn from(info: UserInfo) -> Self {
        Self {
            sub: info.sub,
            name: info.claims.name,
            preferred_username: info.claims.preferred_username,
            email: info.claims.email,
            email_verified: info.claims.email_verified,
        }
    }
}

impl Example for UserInfoClaims {
    fn example() -> Self {
        Self {
            sub: "1".to_owned(),
            name: Some("John Doe".to_owned()),
            preferred_username: Some("johndoe".to_owned()),
            email: Some("johndoe@example.com".to_owned()),
            email_verified: Some(true),
        }
    }
}

#[derive(ApiResponse)]
pub enum UserInfoResponse {
    /// The claims. Not to be cached.
    #[oai(status = 200)]
    Ok(
        Json<UserInfoClaims>,
        /// `no-store`
        #[oai(header = "Cache-Control")]
        String,
    ),
}

pub enum UserInfoErrors {}

impl ErrorStatuses for UserInfoErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::UNAUTHORIZED,
            "Not authenticated (no bearer token); the token could not be validated; or Not \
             enough permissions (the token was not granted `openid`)",
        ),
        STORAGE_UNAVAILABLE,
        INTERNAL_ERROR,
    ];
}

#[derive(Default)]
pub struct UserInfoApi;

#[OpenApi]
impl UserInfoApi {
    /// Read the signed-in user's claims (OpenID Connect)
    ///
    /// For an access token of the authorization-code flow granted `openid`: `sub`, and
    /// with `profile` `name` and `preferred_username`, with `email` `email` and
    /// `email_verified`.
    #[oai(
        path = "/userinfo",
        method = "get",
        operation_id = "read_userinfo_userinfo_get"
    )]
    async fn read_userinfo(
        &self,
        auth: OpenIdBearer,
    ) -> Result<UserInfoResponse, ApiError<UserInfoErrors>> {
        Ok(UserInfoResponse::Ok(
            Json(auth.0.into()),
            "no-store".to_owned(),
        ))
    }

    /// Read the signed-in user's claims (OpenID Connect), by POST
    ///
    /// As `GET /userinfo` (OpenID Connect Core §5.3.1 allows both).
    #[oai(
        path = "/userinfo",
        method = "post",
        operation_id = "read_userinfo_userinfo_post"
    )]
    async fn read_userinfo_post(
        &self,
        auth: OpenIdBearer,
    ) -> Result<UserInfoResponse, ApiError<UserInfoErrors>> {
        Ok(UserInfoResponse::Ok(
            Json(auth.0.into()),
            "no-store".to_owned(),
        ))
    }
}
