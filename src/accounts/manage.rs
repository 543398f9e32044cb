//! Managing users: creating them, changing their password, disabling them and revoking
//! their tokens, with the same limits as the login. Each change that should end a user's
//! tokens does so at once, on every replica: it bumps the stored `token_version` that
//! every bearer check compares.

use secrecy::{ExposeSecret, SecretString};

use super::{AccountsError, MAX_PASSWORD_BYTES, MAX_USERNAME_CHARS};
use crate::{
    auth::password::PasswordHasher,
    db::{self, user, CreateUserError, Db, NewUser},
};

/// A user to create, without the password.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub disabled: bool,
}

/// Usernames are 1 to [`MAX_USERNAME_CHARS`] characters without control characters.
pub fn check_username(username: &str) -> Result<(), AccountsError> {
    if username.is_empty() || username.chars().count() > MAX_USERNAME_CHARS {
        return Err(AccountsError::Invalid(format!(
            "username must be 1 to {MAX_USERNAME_CHARS} characters"
        )));
    }
    if username.chars().any(char::is_control) {
        return Err(AccountsError::Invalid(
            "username must not contain control characters".to_owned(),
        ));
    }
    Ok(())
}

/// Passwords are 1 to [`MAX_PASSWORD_BYTES`] bytes.
pub fn check_password(password: &SecretString) -> Result<(), AccountsError> {
    let len = password.expose_secret().len();
    if len == 0 {
        return Err(AccountsError::Invalid(
            "the password must not be empty".to_owned(),
        ));
    }
    if len > MAX_PASSWORD_BYTES {
        return Err(AccountsError::Invalid(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Creates a user with `password`.
pub async fn add_user(
    db: &Db,
    hasher: &PasswordHasher,
    account: NewAccount,
    password: SecretString,
) -> Result<(), AccountsError> {
    check_username(&account.username)?;
    check_password(&password)?;
    let hashed_password = hasher.hash(password).await?;
    let new = NewUser {
        username: account.username,
        email: account.email,
        full_name: account.full_name,
        hashed_password,
        disabled: account.disabled,
    };
    db::create_user(db, new).await.map_err(|e| match e {
        CreateUserError::Exists(name) => AccountsError::UserExists(name),
        CreateUserError::Db(e) => AccountsError::Database(e),
    })
}

/// Sets `username`'s password and revokes every token issued before.
pub async fn change_password(
    db: &Db,
    hasher: &PasswordHasher,
    username: &str,
    password: SecretString,
) -> Result<(), AccountsError> {
    check_password(&password)?;
    let hashed = hasher.hash(password).await?;
    found(db::change_password(db, username, hashed).await?, username)
}

/// Disables (and revokes every token of) or enables `username`.
pub async fn set_disabled(db: &Db, username: &str, disabled: bool) -> Result<(), AccountsError> {
    found(db::set_disabled(db, username, disabled).await?, username)
}

/// Revokes every token issued to `username` so far.
pub async fn revoke_tokens(db: &Db, username: &str) -> Result<(), AccountsError> {
    found(db::revoke_tokens(db, username).await?, username)
}

/// Every user, by username.
pub async fn list_users(db: &Db) -> Result<Vec<user::Model>, AccountsError> {
    Ok(db::list_users(db).await?)
}

fn found(exists: bool, username: &str) -> Result<(), AccountsError> {
    if exists {
        Ok(())
    } else {
        Err(AccountsError::NoSuchUser(username.to_owned()))
    }
}
