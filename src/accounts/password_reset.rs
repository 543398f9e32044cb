//! Password reset: the mail with a link, the page it opens, and the new password.
//!
//! `forgot_password` answers alike, in the same time, whether or not the address is an
//! account's: both take one lookup and one transaction counting the address's mails (see
//! `mail_out`); the mail itself leaves later, through the outbox. A reset token is
//! spent, and the password set, in one transaction (`db::email_token::reset_password`):
//! single use, dead once the password changed any other way, ending every session. A
//! reset changes the password and nothing else about the account (a second factor stays
//! as it is).

use sea_orm::TransactionTrait;
use secrecy::SecretString;

use super::{
    email_verification::token_hash, mail_out::MailFor, now_secs, signup::mailable, Accounts,
    AccountsError,
};
use crate::db::{
    email_token::{self, Kind},
    user_email,
};

impl Accounts {
    /// Whether `token` is a live reset token (the page shows its form), without spending it.
    pub async fn reset_token_is_live(&self, token: &str) -> Result<bool, AccountsError> {
        let Some(hash) = token_hash(token) else {
            return Ok(false);
        };
        let live = email_token::find_live(&self.db, Kind::Reset, &hash, now_secs()).await?;
        Ok(live.is_some())
    }

    /// Sends a reset mail to `email` if an enabled user has it.
    pub async fn forgot_password(&self, email: &str) -> Result<(), AccountsError> {
        let Some(mail_out) = self.rules.mail.clone() else {
            return Err(AccountsError::MailNotConfigured);
        };
        let email = mailable("email", email)?;
        let user = user_email::find_by_email(&self.db, &email).await?;
        let now = now_secs();
        let txn = self.db.begin().await?;
        let allowed = self.count_mail(&txn, &email, now).await?;
        let mut written = false;
        if let Some(user) = user.filter(|u| allowed && !u.disabled) {
            let stored = user.email.clone().unwrap_or_default();
            let to = MailFor {
                user_id: user.id,
                username: &user.username,
                token_version: user.token_version,
                email: &stored,
            };
            self.enqueue_token_mail(&txn, &mail_out, Kind::Reset, to, now)
                .await?;
            written = true;
        }
        txn.commit().await?;
        if written {
            self.mail_written();
        }
        Ok(())
    }

    /// Sets the password of `token`'s user to `password` (checked against the policy) and
    /// spends the token; every session and token of the user ends, and the address the
    /// mail went to counts as verified.
    pub async fn reset_password(
        &self,
        token: &str,
        password: SecretString,
    ) -> Result<(), AccountsError> {
        self.check_new_password("password", &password)?;
        // Only a live token gets a hash computed: guessing tokens costs no argon2.
        if !self.reset_token_is_live(token).await? {
            return Err(AccountsError::InvalidEmailToken);
        }
        let hash = token_hash(token).ok_or(AccountsError::InvalidEmailToken)?;
        let hashed_password = self.hasher.hash(password).await?;
        let username = email_token::reset_password(&self.db, &hash, hashed_password, now_secs())
            .await?
            .ok_or(AccountsError::InvalidEmailToken)?;
        tracing::info!(user = %username, "password reset; every session ended");
        Ok(())
    }
}
