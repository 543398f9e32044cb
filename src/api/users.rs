//! `GET /users/me/`, `PATCH /users/me/` and `GET /users/me/items/`: what a bearer token
//! gives access to.
//!
//! Each path keeps its trailing slash as in the tutorial. poem-openapi drops a trailing
//! slash from an operation path, but keeps the one of an API's `prefix_path` when the
//! operation path is `/`, hence one API type per path.

use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    payload::Json,
    types::{Example, MaybeUndefined},
    ApiResponse, Object, OpenApi,
};

use super::{
    error::{
        ApiError, ErrorStatuses, BODY_TOO_LARGE, INTERNAL_ERROR, REQUEST_TIMEOUT,
        STORAGE_UNAVAILABLE,
    },
    json_body::JsonBody,
    security::{OAuth2PasswordBearer, Scope},
    AppState,
};
use crate::db::user;

/// A user, as the tutorial's `User` model.
#[derive(Debug, Object)]
#[oai(example)]
pub struct User {
    pub username: String,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub full_name: Option<String>,
    pub disabled: bool,
}

impl Example for User {
    fn example() -> Self {
        User {
            username: "johndoe".to_owned(),
            email: Some("johndoe@example.com".to_owned()),
            full_name: Some("John Doe".to_owned()),
            disabled: false,
        }
    }
}

impl From<user::Model> for User {
    fn from(u: user::Model) -> Self {
        Self {
            username: u.username,
            email: u.email,
            full_name: u.full_name,
            disabled: u.disabled,
        }
    }
}

/// Changes to the current user's profile; fields left out stay as they are, `null`
/// clears one.
#[derive(Debug, Object)]
#[oai(example)]
pub struct UserUpdate {
    /// At most 256 characters, no control characters.
    #[oai(
        nullable,
        validator(max_length = 256, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub email: MaybeUndefined<String>,
    /// At most 256 characters, no control characters.
    #[oai(
        nullable,
        validator(max_length = 256, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub full_name: MaybeUndefined<String>,
}

impl Example for UserUpdate {
    fn example() -> Self {
        UserUpdate {
            email: MaybeUndefined::Value("john@example.com".to_owned()),
            full_name: MaybeUndefined::Undefined,
        }
    }
}

fn change(field: MaybeUndefined<String>) -> Option<Option<String>> {
    match field {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// An item owned by the current user.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Item {
    pub item_id: String,
    pub owner: String,
}

impl Example for Item {
    fn example() -> Self {
        Item {
            item_id: "Foo".to_owned(),
            owner: "johndoe".to_owned(),
        }
    }
}

pub enum ProtectedErrors {}

impl ErrorStatuses for ProtectedErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "Inactive user: the account is disabled",
        ),
        (
            StatusCode::UNAUTHORIZED,
            "Not authenticated (no bearer token); the token could not be validated \
             (malformed, expired, forged, revoked, or its user is gone); or Not enough \
             permissions (the token lacks a scope the operation requires, or its user no \
             longer holds it)",
        ),
        BODY_TOO_LARGE,
        STORAGE_UNAVAILABLE,
        INTERNAL_ERROR,
    ];
}

pub enum UpdateErrors {}

impl ErrorStatuses for UpdateErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        (
            StatusCode::BAD_REQUEST,
            "Inactive user: the account is disabled; or Email already registered: another \
             user has the address (compared case-insensitively)",
        ),
        ProtectedErrors::STATUSES[1],
        REQUEST_TIMEOUT,
        BODY_TOO_LARGE,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Error: a field is of the wrong type, too long or has control characters",
        ),
        STORAGE_UNAVAILABLE,
        INTERNAL_ERROR,
    ];
}

#[derive(ApiResponse)]
pub enum UserResponse {
    /// The current user.
    #[oai(status = 200)]
    Ok(Json<User>),
}

#[derive(ApiResponse)]
pub enum ItemsResponse {
    /// The current user's items.
    #[oai(status = 200)]
    Ok(Json<Vec<Item>>),
}

#[derive(Default)]
pub struct MeApi;

#[OpenApi(prefix_path = "/users/me/")]
impl MeApi {
    /// Read the current user
    ///
    /// The user the bearer token was issued to.
    #[oai(
        path = "/",
        method = "get",
        operation_id = "read_users_me_users_me__get"
    )]
    async fn read_users_me(
        &self,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
    ) -> Result<UserResponse, ApiError<ProtectedErrors>> {
        Ok(UserResponse::Ok(Json(auth.0.into())))
    }

    /// Update the current user
    ///
    /// Sets `email` and `full_name`; a field left out stays as it is, `null` clears it.
    /// Answers the user as stored. A new address is unverified until the link of the
    /// verification mail sent to it is used; an address another user has is refused.
    #[oai(
        path = "/",
        method = "patch",
        operation_id = "update_users_me_users_me__patch"
    )]
    async fn update_users_me(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Me")] auth: OAuth2PasswordBearer,
        body: JsonBody<UserUpdate>,
    ) -> Result<UserResponse, ApiError<UpdateErrors>> {
        let update = body.0;
        let user = state
            .accounts
            .update_profile(&auth.0, change(update.email), change(update.full_name))
            .await
            .map_err(super::signup::already_registered)?;
        Ok(UserResponse::Ok(Json(user.into())))
    }
}

#[derive(Default)]
pub struct MyItemsApi;

#[OpenApi(prefix_path = "/users/me/items/")]
impl MyItemsApi {
    /// Read the current user's items
    ///
    /// The items owned by the user the bearer token was issued to.
    #[oai(
        path = "/",
        method = "get",
        operation_id = "read_own_items_users_me_items__get"
    )]
    async fn read_own_items(
        &self,
        #[oai(scope = "Scope::Items", scope = "Scope::Me")] auth: OAuth2PasswordBearer,
    ) -> Result<ItemsResponse, ApiError<ProtectedErrors>> {
        Ok(ItemsResponse::Ok(Json(vec![Item {
            item_id: "Foo".to_owned(),
            owner: auth.0.username,
        }])))
    }
}

/// The system status.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Status {
    /// Always `ok`.
    pub status: String,
}

impl Example for Status {
    fn example() -> Self {
        Status {
            status: "ok".to_owned(),
        }
    }
}

#[derive(ApiResponse)]
pub enum StatusResponse {
    /// The service is up and the token is valid.
    #[oai(status = 200)]
    Ok(Json<Status>),
}

#[derive(Default)]
pub struct StatusApi;

#[OpenApi(prefix_path = "/status/")]
impl StatusApi {
    /// Read the system status
    ///
    /// Any valid token may ask, whatever its scopes.
    #[oai(
        path = "/",
        method = "get",
        operation_id = "read_system_status_status__get"
    )]
    async fn read_system_status(
        &self,
        _auth: OAuth2PasswordBearer,
    ) -> Result<StatusResponse, ApiError<ProtectedErrors>> {
        Ok(StatusResponse::Ok(Json(Status {
            status: "ok".to_owned(),
        })))
    }
}
