//! What a signed-in user changes about their own account: profile and password.

use std::net::IpAddr;

use secrecy::SecretString;

use super::{manage, Accounts, AccountsError};
use crate::db::user;

impl Accounts {
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
        self.check_new_password("new_password", &new)?;
        match self.check_login(client, &user.username, current).await {
            Err(AccountsError::IncorrectCredentials) => Err(AccountsError::IncorrectPassword),
            Err(other) => Err(other),
            Ok(_) => {
                let policy = &self.rules.password_policy;
                manage::change_password(&self.db, &self.hasher, policy, &user.username, new).await
            }
        }
    }
}
