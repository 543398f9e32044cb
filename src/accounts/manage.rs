//! Managing users: creating them, changing their password, scopes and profile, disabling,
//! deleting them and revoking their tokens, with the same limits as the login; what the
//! CLI and the admin API both call. Each change that should end a user's tokens does so at
//! once, on every replica: it bumps the stored `token_version` that every bearer check
//! compares. A scope change needs no bump: every bearer check reads the held scopes.
//!
//! [`change_account`] and [`delete_user`], the admin API's, never take `admin` from the
//! last enabled user holding it: an API caller could otherwise lock every admin out. The
//! CLI's [`set_scopes`] and [`set_disabled`] may: an operator with the database at hand is
//! the way back in.

use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};

use super::{usernames, AccountsError, Scope, Scopes};
use crate::{
    auth::{hashing_pool::PasswordHasher, password_policy::PasswordPolicy},
    db::{
        scope_holders::{self, KeptHolder},
        user::{self, NewUser, Taken, UserChanges},
        user_email, Db,
    },
};

/// Longest email and full name accepted, in characters.
pub const MAX_PROFILE_CHARS: usize = 256;

/// A user to create, without the password.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// As given: [`add_user`] prepares it (see `accounts::usernames`).
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub disabled: bool,
    /// The scopes the user holds.
    pub scopes: Scopes,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct AccountChanges {
    /// `Some(None)` clears the email.
    pub email: Option<Option<String>>,
    /// `Some(None)` clears the full name.
    pub full_name: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub password: Option<SecretString>,
    pub scopes: Option<Scopes>,
}

/// Emails and full names are at most [`MAX_PROFILE_CHARS`] characters without control
/// characters; `field` names the one checked in the message.
pub fn check_profile_field(field: &'static str, value: Option<&str>) -> Result<(), AccountsError> {
    let Some(value) = value else {
        return Ok(());
    };
    if value.chars().count() > MAX_PROFILE_CHARS {
        return Err(invalid(
            field,
            format!("{field} must be at most {MAX_PROFILE_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

/// A new password must pass `policy` (length, not a common password); `field` names it
/// in the refusal.
pub fn check_password(
    policy: &PasswordPolicy,
    field: &'static str,
    password: &SecretString,
) -> Result<(), AccountsError> {
    policy
        .check(password.expose_secret())
        .map_err(|violation| AccountsError::WeakPassword { field, violation })
}

/// Creates a user with `password`; returns the username as stored (prepared, see
/// `accounts::usernames`). A name that looks like an existing user's is taken as well.
pub async fn add_user(
    db: &Db,
    hasher: &PasswordHasher,
    policy: &PasswordPolicy,
    account: NewAccount,
    password: SecretString,
) -> Result<String, AccountsError> {
    let new = new_user(hasher, policy, account, password).await?;
    insert_user(db, new).await
}

/// A user to create: the account checked, its name prepared, its password hashed.
pub(super) async fn new_user(
    hasher: &PasswordHasher,
    policy: &PasswordPolicy,
    account: NewAccount,
    password: SecretString,
) -> Result<NewUser, AccountsError> {
    let username = usernames::prepare(&account.username)?;
    check_profile_field("email", account.email.as_deref())?;
    check_profile_field("full_name", account.full_name.as_deref())?;
    check_password(policy, "password", &password)?;
    let hashed_password = hasher.hash(password).await?;
    Ok(NewUser {
        username_skeleton: Some(usernames::look_alike_key(&username)),
        username,
        email: account.email,
        full_name: account.full_name,
        hashed_password,
        disabled: account.disabled,
        scopes: Some(account.scopes.to_string()),
    })
}

/// Stores `new` (in a transaction, or not); returns its username. The name's, the name
/// key's and the address's UNIQUE indexes decide, so two creations that race cannot both
/// win.
pub(super) async fn insert_user(
    db: &impl ConnectionTrait,
    new: NewUser,
) -> Result<String, AccountsError> {
    if user::create(db, new.clone()).await? {
        return Ok(new.username);
    }
    Err(match user::taken(db, &new).await? {
        Taken::Name => AccountsError::UserExists(new.username),
        Taken::Email => AccountsError::EmailExists(new.email.unwrap_or_default()),
    })
}

/// Sets `username`'s password and revokes every token issued before.
pub async fn change_password(
    db: &Db,
    hasher: &PasswordHasher,
    policy: &PasswordPolicy,
    username: &str,
    password: SecretString,
) -> Result<(), AccountsError> {
    check_password(policy, "password", &password)?;
    let hashed = hasher.hash(password).await?;
    found(user::change_password(db, username, hashed).await?, username)
}

/// Disables (and revokes every token of) or enables `username`.
pub async fn set_disabled(db: &Db, username: &str, disabled: bool) -> Result<(), AccountsError> {
    found(user::set_disabled(db, username, disabled).await?, username)
}

/// Revokes every token issued to `username` so far.
pub async fn revoke_tokens(db: &Db, username: &str) -> Result<(), AccountsError> {
    found(user::revoke_tokens(db, username).await?, username)
}

/// Applies `changes` to `username` at once: a disable or a new password also revokes every
/// token issued before; new scopes apply from the next request. A disable or new scopes
/// that would leave no enabled user holding `admin` are refused ([`AccountsError::LastAdmin`]).
pub async fn change_account(
    db: &Db,
    hasher: &PasswordHasher,
    policy: &PasswordPolicy,
    username: &str,
    changes: AccountChanges,
) -> Result<(), AccountsError> {
    check_profile_field("email", changes.email.as_ref().and_then(Option::as_deref))?;
    check_profile_field(
        "full name",
        changes.full_name.as_ref().and_then(Option::as_deref),
    )?;
    let hashed_password = match changes.password {
        Some(password) => {
            check_password(policy, "password", &password)?;
            Some(hasher.hash(password).await?)
        }
        None => None,
    };
    let changes = UserChanges {
        email: changes.email,
        full_name: changes.full_name,
        disabled: changes.disabled,
        hashed_password,
        scopes: changes.scopes.map(|s| s.to_string()),
        revoke_tokens: false,
    };
    let kept =
        scope_holders::change_user_keeping_holder(db, username, changes, Scope::Admin.name())
            .await
            .map_err(|e| {
                if user::is_email_taken(&e) {
                    AccountsError::EmailExists(String::new())
                } else {
                    e.into()
                }
            })?;
    kept_admin(kept, username)
}

/// Sets the scopes `username` holds; the next request of every token sees them.
pub async fn set_scopes(db: &Db, username: &str, scopes: Scopes) -> Result<(), AccountsError> {
    let changes = UserChanges {
        scopes: Some(scopes.to_string()),
        ..UserChanges::default()
    };
    found(user::change(db, username, changes).await?, username)
}

/// `username`.
pub async fn get_user(db: &Db, username: &str) -> Result<user::Model, AccountsError> {
    user::find(db, username)
        .await?
        .ok_or_else(|| AccountsError::NoSuchUser(username.to_owned()))
}

/// Deletes `username`; their tokens stop working with them. The last enabled user holding
/// `admin` is not deleted ([`AccountsError::LastAdmin`]).
pub async fn delete_user(db: &Db, username: &str) -> Result<(), AccountsError> {
    let kept = scope_holders::delete_user_keeping_holder(db, username, Scope::Admin.name()).await?;
    kept_admin(kept, username)
}

/// Every user, by username.
pub async fn list_users(db: &Db) -> Result<Vec<user::Model>, AccountsError> {
    Ok(user::list(db).await?)
}

/// Addresses several users share (compared case-insensitively), each with its users,
/// oldest first: duplicates from before addresses were unique. Only the first user holds
/// the address for lookups (reset, verification).
pub async fn shared_addresses(db: &Db) -> Result<Vec<(String, Vec<String>)>, AccountsError> {
    Ok(user_email::shared_addresses(db).await?)
}

fn invalid(field: &'static str, message: impl Into<String>) -> AccountsError {
    AccountsError::Invalid {
        field,
        message: message.into(),
    }
}

fn kept_admin(kept: KeptHolder, username: &str) -> Result<(), AccountsError> {
    match kept {
        KeptHolder::Done => Ok(()),
        KeptHolder::NoSuchUser => Err(AccountsError::NoSuchUser(username.to_owned())),
        KeptHolder::LastHolder => Err(AccountsError::LastAdmin(username.to_owned())),
    }
}

fn found(exists: bool, username: &str) -> Result<(), AccountsError> {
    if exists {
        Ok(())
    } else {
        Err(AccountsError::NoSuchUser(username.to_owned()))
    }
}
