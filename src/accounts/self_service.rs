//! What a signed-in user changes about their own account: profile and password.

use std::net::IpAddr;

use secrecy::SecretString;

use super::{
    manage::{self, AccountChanges},
    Accounts, AccountsError,
};
use crate::db::user;

impl Accounts {
    /// Sets `user`'s email and full name (`None` leaves one as it is, `Some(None)` clears
    /// it) and returns the user as stored.
    pub async fn update_profile(
        &self,
        user: &user::Model,
        email: Option<Option<String>>,
        full_name: Option<Option<String>>,
    ) -> Result<user::Model, AccountsError> {
        let changes = AccountChanges {
            email,
            full_name,
            ..AccountChanges::default()
        };
        manage::change_account(&self.db, &self.hasher, &user.username, changes).await?;
        manage::get_user(&self.db, &user.username).await
    }

    /// Changes `user`'s password once `current` proves it is them; ends every session and
    /// token of the user, as `user passwd` does. A wrong `current` is
    /// [`AccountsError::IncorrectPassword`] and counts as a failed login for the account
    /// and the client address, with the login's limits: a stolen access token must not
    /// become an unthrottled password oracle.
    pub async fn change_own_password(
        &self,
        client: Option<IpAddr>,
        user: &user::Model,
        current: SecretString,
        new: SecretString,
    ) -> Result<(), AccountsError> {
        manage::check_password(&new).map_err(|_| invalid_new_password())?;
        match self.check_login(client, &user.username, current).await {
            Err(AccountsError::IncorrectCredentials) => Err(AccountsError::IncorrectPassword),
            Err(other) => Err(other),
            Ok(_) => manage::change_password(&self.db, &self.hasher, &user.username, new).await,
        }
    }
}

fn invalid_new_password() -> AccountsError {
    AccountsError::Invalid {
        field: "new_password",
        message: format!(
            "the new password must be 1 to {} bytes",
            super::MAX_PASSWORD_BYTES
        ),
    }
}
