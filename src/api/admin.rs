//! The admin API (scope `admin`): `/admin/users/` and `/admin/users/{username}`. Users are
//! managed here exactly as `gatehouse user ...` manages them, through `accounts::manage`,
//! with the same limits; every change applies from the very next request, on every replica.

use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    param::Path,
    payload::Json,
    types::{Example, MaybeUndefined, Password},
    ApiResponse, Object, OpenApi,
};
use secrecy::SecretString;

use super::{
    error::{ApiError, ErrorStatuses, BODY_TOO_LARGE, INTERNAL_ERROR, REQUEST_TIMEOUT},
    json_body::JsonBody,
    security::{OAuth2PasswordBearer, Scope},
    AppState,
};
use crate::{
    accounts::{
        held_scopes,
        manage::{self, AccountChanges, NewAccount},
        totp, Scopes,
    },
    db::{user, Db},
};

/// A user as the admin API shows it: the tutorial's `User` and the scopes it holds.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AdminUser {
    pub username: String,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub full_name: Option<String>,
    pub disabled: bool,
    /// The scopes the user holds; a token gets those of them it asks for.
    pub scopes: Vec<Scope>,
    /// Whether the user proved `email` is theirs (a verification or reset link).
    pub email_verified: bool,
    /// Whether the user has a second factor (TOTP) on.
    pub totp_enabled: bool,
}

impl Example for AdminUser {
    fn example() -> Self {
        AdminUser {
            username: "carol".to_owned(),
            email: Some("carol@example.com".to_owned()),
            full_name: Some("Carol Cooper".to_owned()),
            disabled: false,
            scopes: vec![Scope::Me, Scope::Items],
            email_verified: true,
            totp_enabled: false,
        }
    }
}

impl AdminUser {
    fn new(u: user::Model, totp_enabled: bool) -> Self {
        Self {
            scopes: held_scopes(&u).iter().collect(),
            totp_enabled,
            username: u.username,
            email: u.email,
            full_name: u.full_name,
            disabled: u.disabled,
            email_verified: u.email_verified,
        }
    }
}

/// A user to create.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AdminUserCreate {
    /// 1 to 128 characters. Stored width-mapped and in NFC (RFC 8265's
    /// UsernameCasePreserved); no spaces, control, invisible or direction characters
    /// (Unicode categories Zs, Zl, Zp, Cc, Cf). Unique: a name that looks like an existing
    /// one (the same Unicode TR39 skeleton, case folded) is already registered.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub username: String,
    /// 1 to 1024 bytes.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: Password,
    #[oai(
        nullable,
        validator(max_length = 256, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub email: Option<String>,
    #[oai(
        nullable,
        validator(max_length = 256, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub full_name: Option<String>,
    /// Create the user disabled; absent: `false`.
    // No `default: false` in the schema: openapi-typescript would make the field required
    // in the request type (see docs/api.md on the form's `scope`).
    pub disabled: Option<bool>,
    /// The scopes the user holds; default `["me", "items"]`.
    pub scopes: Option<Vec<Scope>>,
}

impl Example for AdminUserCreate {
    fn example() -> Self {
        AdminUserCreate {
            username: "carol".to_owned(),
            password: Password("correct horse battery staple".to_owned()),
            email: Some("carol@example.com".to_owned()),
            full_name: Some("Carol Cooper".to_owned()),
            disabled: None,
            scopes: Some(vec![Scope::Me, Scope::Items]),
        }
    }
}

/// Changes to a user: fields left out stay as they are; `null` clears `email` or
/// `full_name`. A new password or `disabled: true` also revokes every earlier token.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct AdminUserUpdate {
    #[oai(
        nullable,
        validator(max_length = 256, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub email: MaybeUndefined<String>,
    #[oai(
        nullable,
        validator(max_length = 256, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")
    )]
    pub full_name: MaybeUndefined<String>,
    pub disabled: Option<bool>,
    /// The scopes the user holds from the next request on.
    pub scopes: Option<Vec<Scope>>,
    /// 1 to 1024 bytes.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: Option<Password>,
}

impl Example for AdminUserUpdate {
    fn example() -> Self {
        AdminUserUpdate {
            email: MaybeUndefined::Undefined,
            full_name: MaybeUndefined::Undefined,
            disabled: None,
            scopes: Some(vec![Scope::Me]),
            password: None,
        }
    }
}

/// Every status of an admin operation (here and in `admin_clients`).
pub(super) const AUTH: [(StatusCode, &str); 2] = [
    (
        StatusCode::BAD_REQUEST,
        "Inactive user: the caller's account is disabled",
    ),
    (
        StatusCode::UNAUTHORIZED,
        "Not authenticated (no bearer token); the token could not be validated; Not enough \
         permissions (the token lacks the `admin` scope, or its user no longer holds it); or, \
         with `REQUIRE_MFA_FOR_ADMIN`, a sign-in without the second factor (RFC 9470 \
         challenge `insufficient_user_authentication`)",
    ),
];
// Statuses only some of them answer.
const NOT_FOUND: (StatusCode, &str) = (StatusCode::NOT_FOUND, "User not found");
const LAST_ADMIN: (StatusCode, &str) = (
    StatusCode::CONFLICT,
    "The user is the last enabled one holding `admin` (the caller, unless another admin's \
     change came first): taking the scope away, disabling or deleting them would leave \
     nobody to manage users",
);
const LAST_ADMIN_OR_EMAIL: (StatusCode, &str) = (
    StatusCode::CONFLICT,
    "Email already registered (another user has the address, compared \
     case-insensitively); or the user is the last enabled one holding `admin` (the \
     caller, unless another admin's change came first): taking the scope away or \
     disabling them would leave nobody to manage users",
);
const BODY: [(StatusCode, &str); 3] = [
    REQUEST_TIMEOUT,
    BODY_TOO_LARGE,
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        "Validation Error: a field is missing, of the wrong type or outside its limits, or \
         a scope is unknown",
    ),
];
const TAIL: [(StatusCode, &str); 2] = [
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "Storage unavailable, or password hashing saturated; retry later",
    ),
    INTERNAL_ERROR,
];

pub enum ListErrors {}
impl ErrorStatuses for ListErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[AUTH[0], AUTH[1], TAIL[0], TAIL[1]];
}

pub enum CreateErrors {}
impl ErrorStatuses for CreateErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        AUTH[0],
        AUTH[1],
        BODY[0],
        (
            StatusCode::CONFLICT,
            "Username already registered, or Email already registered (another user has the \
             address, compared case-insensitively)",
        ),
        BODY[1],
        BODY[2],
        TAIL[0],
        TAIL[1],
    ];
}

pub enum UserErrors {}
impl ErrorStatuses for UserErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] =
        &[AUTH[0], AUTH[1], NOT_FOUND, TAIL[0], TAIL[1]];
}

pub enum UpdateErrors {}
impl ErrorStatuses for UpdateErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] = &[
        AUTH[0],
        AUTH[1],
        NOT_FOUND,
        BODY[0],
        LAST_ADMIN_OR_EMAIL,
        BODY[1],
        BODY[2],
        TAIL[0],
        TAIL[1],
    ];
}

pub enum DeleteErrors {}
impl ErrorStatuses for DeleteErrors {
    const STATUSES: &'static [(StatusCode, &'static str)] =
        &[AUTH[0], AUTH[1], NOT_FOUND, LAST_ADMIN, TAIL[0], TAIL[1]];
}

#[derive(ApiResponse)]
pub enum UsersResponse {
    /// Every user, by username.
    #[oai(status = 200)]
    Ok(Json<Vec<AdminUser>>),
}

#[derive(ApiResponse)]
pub enum CreatedResponse {
    /// The user was created.
    #[oai(status = 201)]
    Created(Json<AdminUser>),
}

#[derive(ApiResponse)]
pub enum UserResponse {
    /// The user.
    #[oai(status = 200)]
    Ok(Json<AdminUser>),
}

#[derive(ApiResponse)]
pub enum TotpResetResponse {
    /// TOTP is off and the user's sessions ended.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum DeletedResponse {
    /// The user was deleted; their tokens stop working.
    #[oai(status = 204)]
    NoContent,
}

fn secret(password: Password) -> SecretString {
    SecretString::from(password.0)
}

#[derive(Default)]
pub struct AdminUsersApi;

#[OpenApi(prefix_path = "/admin/users/")]
impl AdminUsersApi {
    /// List users
    ///
    /// Every user with the scopes they hold, by username. Needs the `admin` scope.
    #[oai(
        path = "/",
        method = "get",
        operation_id = "list_users_admin_users__get"
    )]
    async fn list_users(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
    ) -> Result<UsersResponse, ApiError<ListErrors>> {
        let db = state.accounts.db();
        let users = manage::list_users(db).await?;
        let with_totp = totp::enabled_among(db, &users).await?;
        Ok(UsersResponse::Ok(Json(
            users
                .into_iter()
                .map(|u| {
                    let totp_enabled = with_totp.contains(&u.id);
                    AdminUser::new(u, totp_enabled)
                })
                .collect(),
        )))
    }

    /// Create a user
    ///
    /// With the same limits as `gatehouse user add`. Needs the `admin` scope.
    #[oai(
        path = "/",
        method = "post",
        operation_id = "create_user_admin_users__post"
    )]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
        body: JsonBody<AdminUserCreate>,
    ) -> Result<CreatedResponse, ApiError<CreateErrors>> {
        let new = body.0;
        let scopes = new
            .scopes
            .map_or(Scopes::DEFAULT_HELD, |s| s.into_iter().collect());
        let account = NewAccount {
            username: new.username,
            email: new.email,
            full_name: new.full_name,
            disabled: new.disabled.unwrap_or(false),
            scopes,
        };
        let username = state
            .accounts
            .add_user_with_verification(account, secret(new.password))
            .await?;
        let created = manage::get_user(state.accounts.db(), &username).await?;
        Ok(CreatedResponse::Created(Json(AdminUser::new(
            created, false,
        ))))
    }
}

#[derive(Default)]
pub struct AdminUserApi;

#[OpenApi]
impl AdminUserApi {
    /// Read a user
    ///
    /// Needs the `admin` scope.
    #[oai(
        path = "/admin/users/:username",
        method = "get",
        operation_id = "read_user_admin_users__username__get"
    )]
    async fn read_user(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
        username: Path<String>,
    ) -> Result<UserResponse, ApiError<UserErrors>> {
        admin_user(state.accounts.db(), &username).await
    }

    /// Change a user
    ///
    /// Fields left out stay as they are. A new password or `disabled: true` revokes every
    /// token issued before; new scopes apply from the user's next request. The last
    /// enabled user holding `admin` keeps it: scopes without it or `disabled: true` for
    /// them answer 409. Needs the `admin` scope.
    #[oai(
        path = "/admin/users/:username",
        method = "patch",
        operation_id = "update_user_admin_users__username__patch"
    )]
    async fn update_user(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
        username: Path<String>,
        body: JsonBody<AdminUserUpdate>,
    ) -> Result<UserResponse, ApiError<UpdateErrors>> {
        let update = body.0;
        let optional = |field: MaybeUndefined<String>| match field {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(v)),
        };
        let changes = AccountChanges {
            email: optional(update.email),
            full_name: optional(update.full_name),
            disabled: update.disabled,
            password: update.password.map(secret),
            scopes: update.scopes.map(|s| s.into_iter().collect()),
        };
        let db = state.accounts.db();
        let policy = &state.accounts.rules().password_policy;
        manage::change_account(db, state.accounts.hasher(), policy, &username, changes).await?;
        admin_user(db, &username).await
    }

    /// Delete a user
    ///
    /// Their tokens stop working at once. The last enabled user holding `admin` is not
    /// deleted (409). Needs the `admin` scope.
    #[oai(
        path = "/admin/users/:username",
        method = "delete",
        operation_id = "delete_user_admin_users__username__delete"
    )]
    async fn delete_user(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
        username: Path<String>,
    ) -> Result<DeletedResponse, ApiError<DeleteErrors>> {
        manage::delete_user(state.accounts.db(), &username).await?;
        Ok(DeletedResponse::NoContent)
    }

    /// Turn off a user's second factor
    ///
    /// For a user who lost their authenticator app and their recovery codes: TOTP is
    /// turned off and every session and token of theirs ends, so they log in again with
    /// their password alone, and may enrol anew. Needs the `admin` scope.
    #[oai(
        path = "/admin/users/:username/totp",
        method = "delete",
        operation_id = "reset_user_totp_admin_users__username__totp_delete"
    )]
    async fn reset_user_totp(
        &self,
        state: Data<&AppState>,
        #[oai(scope = "Scope::Admin")] _auth: OAuth2PasswordBearer,
        username: Path<String>,
    ) -> Result<TotpResetResponse, ApiError<UserErrors>> {
        totp::reset_totp(state.accounts.db(), &username).await?;
        Ok(TotpResetResponse::NoContent)
    }
}

/// `username` as the admin API shows them.
async fn admin_user<S: ErrorStatuses>(
    db: &Db,
    username: &str,
) -> Result<UserResponse, ApiError<S>> {
    let user = manage::get_user(db, username).await?;
    let totp_enabled = !totp::enabled_among(db, std::slice::from_ref(&user))
        .await?
        .is_empty();
    Ok(UserResponse::Ok(Json(AdminUser::new(user, totp_enabled))))
}
