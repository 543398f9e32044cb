//! Email verification: the link a new address gets, the page it opens, and asking for
//! another mail. A page view never spends a token (mail scanners open links); only the
//! page's button, or an API client's POST, does.

use sea_orm::TransactionTrait;

use super::{
    mail_out::{now_secs, MailFor},
    signup::mailable,
    Accounts, AccountsError,
};
use crate::{
    auth::email_token::{email_token_hash, MAX_TOKEN_CHARS},
    db::{
        email_token::{self, Kind},
        user, user_email,
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
