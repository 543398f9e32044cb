//! Email verification: the link a new address gets, the page it opens, and asking for
//! another mail. A page view never spends a token (mail scanners open links); only the
//! page's button, or an API client's POST, does.

use sea_orm::{DatabaseTransaction, TransactionTrait};
use secrecy::SecretString;

use super::{
    mail_out::MailFor,
    manage::{self, check_profile_field, get_user, NewAccount},
    now_secs,
    signup::mailable,
    Accounts, AccountsError,
};
use crate::{
    auth::email_token::{email_token_hash, MAX_TOKEN_CHARS},
    db::{
        self,
        email_token::{self, Kind},
        user::{self, UserChanges},
        user_email,
    },
};

/// The stored hash of `token`, or `None` for something that is no token of ours.
pub(super) fn token_hash(token: &str) -> Option<String> {
    (!token.is_empty() && token.len() <= MAX_TOKEN_CHARS).then(|| email_token_hash(token))
}

impl Accounts {
    /// The address a live verification `token` would confirm, without spending it.
    pub async fn verification_address(&self, token: &str) -> Result<Option<String>, AccountsError> {
        let Some(hash) = token_hash(token) else {
            return Ok(None);
        };
        let live = email_token::find_live(&self.db, Kind::Verify, &hash, now_secs()).await?;
        Ok(live.map(|t| t.email_key))
    }

    /// Spends `token` and marks the address it was sent to verified; the user as stored.
    pub async fn verify_email(&self, token: &str) -> Result<user::Model, AccountsError> {
        let hash = token_hash(token).ok_or(AccountsError::InvalidEmailToken)?;
        let user_id = email_token::verify_email(&self.db, &hash, now_secs())
            .await?
            .ok_or(AccountsError::InvalidEmailToken)?;
        let user = self.user_by_id(user_id).await?;
        tracing::info!(user = %user.username, "email address verified");
        Ok(user)
    }

    /// Sends a new verification mail to `email` if an enabled user has it unverified.
    /// Answers alike, in the same time, whether or not one does (see `mail_out`).
    pub async fn request_verification(&self, email: &str) -> Result<(), AccountsError> {
        let Some(mail_out) = self.rules.mail.clone() else {
            return Err(AccountsError::MailNotConfigured);
        };
        let email = mailable("email", email)?;
        let user = user_email::find_by_email(&self.db, &email).await?;
        let now = now_secs();
        let txn = self.db.begin().await?;
        let allowed = self.count_mail(&txn, &email, now).await?;
        let mut written = false;
        if let Some(user) = user.filter(|u| allowed && !u.disabled && !u.email_verified) {
            let stored = user.email.clone().unwrap_or_default();
            let to = MailFor {
                user_id: user.id,
                username: &user.username,
                token_version: user.token_version,
                email: &stored,
            };
            self.enqueue_token_mail(&txn, &mail_out, Kind::Verify, to, now)
                .await?;
            written = true;
        }
        txn.commit().await?;
        if written {
            self.mail_written();
        }
        Ok(())
    }
}

impl Accounts {
    /// Creates a user as `gatehouse user add` does (the admin API's create) and, when mail
    /// is configured and the user has an address, writes a verification mail in the same
    /// transaction. Returns the username as stored.
    pub async fn add_user_with_verification(
        &self,
        account: NewAccount,
        password: SecretString,
    ) -> Result<String, AccountsError> {
        let new =
            manage::new_user(&self.hasher, &self.rules.password_policy, account, password).await?;
        let txn = self.db.begin().await?;
        let username = manage::insert_user(&txn, new).await?;
        let written = self.mail_new_address(&txn, &username).await?;
        txn.commit().await?;
        if written {
            self.mail_written();
        }
        Ok(username)
    }

    /// Sets `user`'s email and full name (`None` leaves one as it is, `Some(None)` clears
    /// it) and returns the user as stored. A new address is unverified and gets a
    /// verification mail, written in the same transaction.
    pub async fn update_profile(
        &self,
        user: &user::Model,
        email: Option<Option<String>>,
        full_name: Option<Option<String>>,
    ) -> Result<user::Model, AccountsError> {
        check_profile_field("email", email.as_ref().and_then(Option::as_deref))?;
        check_profile_field("full_name", full_name.as_ref().and_then(Option::as_deref))?;
        let new_address = email.as_ref().is_some_and(|new| {
            new.as_deref().map(db::email_key) != user.email.as_deref().map(db::email_key)
        });
        let changes = UserChanges {
            email,
            full_name,
            ..UserChanges::default()
        };
        let txn = self.db.begin().await?;
        match user::change_in(&txn, &user.username, changes).await {
            Ok(true) => {}
            Ok(false) => return Err(AccountsError::NoSuchUser(user.username.clone())),
            Err(e) if user::is_email_taken(&e) => {
                return Err(AccountsError::EmailExists(String::new()))
            }
            Err(e) => return Err(e.into()),
        }
        let written = new_address && self.mail_new_address(&txn, &user.username).await?;
        txn.commit().await?;
        if written {
            self.mail_written();
        }
        get_user(&self.db, &user.username).await
    }

    /// In `txn`: a verification mail to `username`'s address, if the user has one, mail
    /// is configured and the address's hourly cap allows; whether one was written.
    async fn mail_new_address(
        &self,
        txn: &DatabaseTransaction,
        username: &str,
    ) -> Result<bool, AccountsError> {
        let Some(mail_out) = self.rules.mail.clone() else {
            return Ok(false);
        };
        let Some(user) = user::find_in(txn, username).await? else {
            return Ok(false);
        };
        let Some(email) = user.email.clone() else {
            return Ok(false);
        };
        let now = now_secs();
        if !self.count_mail(txn, &email, now).await? {
            return Ok(false);
        }
        let to = MailFor {
            user_id: user.id,
            username: &user.username,
            token_version: user.token_version,
            email: &email,
        };
        self.enqueue_token_mail(txn, &mail_out, Kind::Verify, to, now)
            .await?;
        Ok(true)
    }
}
