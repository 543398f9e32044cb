//! What people may do with accounts of their own (signup, verification, reset) and the
//! mails that go with it: the rules, and putting a mail in the outbox in the transaction
//! of the change it is about.
//!
//! At most `MAIL_PER_ADDRESS_PER_HOUR` verification or reset mails go to one address in
//! an hour, counted per address (its SHA-256, so typed-in addresses nobody has are not
//! kept in clear) in `login_failures`' fixed windows. The count is taken for every
//! request, whether or not an account has the address, so both answer alike and take the
//! same transaction.

use std::{sync::Arc, time::Duration};

use sea_orm::{ConnectionTrait, DbErr};
use sha2::{Digest, Sha256};

use super::{secs, Accounts};
use crate::{
    auth::{email_token::new_email_token, password_policy::PasswordPolicy, throttle},
    db::{
        self,
        email_token::{self, Kind, NewEmailToken},
        login_failure::{self, Scope},
        mail_outbox,
    },
    mail::{Composer, Mail, Outbox},
};

/// Default of `RESET_TOKEN_EXPIRE_MINUTES`.
pub const DEFAULT_RESET_TOKEN_EXPIRE_MINUTES: u64 = 30;
/// Default of `MAIL_PER_ADDRESS_PER_HOUR`.
pub const DEFAULT_MAIL_PER_ADDRESS_PER_HOUR: u32 = 5;
/// How long a verification link works.
pub const VERIFY_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Signups from one client address in an hour before `POST /users/` answers 429.
pub const SIGNUPS_PER_ADDRESS_PER_HOUR: u32 = 10;

/// Where mails go: composed by `composer`, delivered by the sender `outbox` wakes.
#[derive(Debug, Clone)]
pub struct MailOut {
    pub composer: Composer,
    pub outbox: Outbox,
}

/// The rules of accounts people run themselves.
#[derive(Debug, Clone)]
pub struct AccountRules {
    /// `SIGNUP=open`.
    pub signup_open: bool,
    /// `REQUIRE_VERIFIED_EMAIL`: a password login needs a verified address.
    pub require_verified_email: bool,
    pub password_policy: PasswordPolicy,
    /// `RESET_TOKEN_EXPIRE_MINUTES`.
    pub reset_token_lifetime: Duration,
    /// `MAIL_PER_ADDRESS_PER_HOUR`.
    pub mail_per_address_per_hour: u32,
    /// `None`: no mail can be sent (no `SMTP_URL`, and not `--demo`).
    pub mail: Option<MailOut>,
}

impl Default for AccountRules {
    fn default() -> Self {
        Self {
            signup_open: false,
            require_verified_email: false,
            password_policy: PasswordPolicy::default(),
            reset_token_lifetime: Duration::from_secs(DEFAULT_RESET_TOKEN_EXPIRE_MINUTES * 60),
            mail_per_address_per_hour: DEFAULT_MAIL_PER_ADDRESS_PER_HOUR,
            mail: None,
        }
    }
}

/// The subject an address's mails are counted under: the SHA-256 of its key.
fn mail_subject(email: &str) -> String {
    hex::encode(Sha256::digest(db::email_key(email).as_bytes()))
}

/// A verification or reset mail to write: the user it is for, and the address.
pub(super) struct MailFor<'a> {
    pub user_id: i32,
    pub username: &'a str,
    pub token_version: i64,
    /// As stored on the user.
    pub email: &'a str,
}

impl Accounts {
    pub fn rules(&self) -> &AccountRules {
        &self.rules
    }

    /// Sets the rules of accounts people run themselves (default: signup closed, no mail).
    pub fn with_rules(mut self, rules: AccountRules) -> Self {
        self.rules = Arc::new(rules);
        self
    }

    /// Counts a mail to `email` in `txn`: whether it may still go (under the hourly cap).
    pub(super) async fn count_mail(
        &self,
        txn: &impl ConnectionTrait,
        email: &str,
        now: i64,
    ) -> Result<bool, DbErr> {
        let window = throttle::Limit {
            max_failures: self.rules.mail_per_address_per_hour,
            window_secs: 3600,
        };
        let counted = login_failure::reserve(
            txn,
            Scope::Mail,
            &mail_subject(email),
            now,
            window.open_since(now),
            window.max_failures,
        )
        .await?;
        Ok(counted.is_some())
    }

    /// Stores a new token of `kind` for `to` and puts its mail in the outbox, in `txn`.
    /// An address no mail can be sent to is logged and skipped: the change stands.
    pub(super) async fn enqueue_token_mail(
        &self,
        txn: &impl ConnectionTrait,
        mail_out: &MailOut,
        kind: Kind,
        to: MailFor<'_>,
        now: i64,
    ) -> Result<(), DbErr> {
        let (token, token_hash) = new_email_token();
        let lifetime = match kind {
            Kind::Verify => VERIFY_TOKEN_LIFETIME,
            Kind::Reset => self.rules.reset_token_lifetime,
        };
        let composed = match kind {
            Kind::Verify => mail_out
                .composer
                .verify_email(to.email, to.username, &token, lifetime),
            Kind::Reset => {
                mail_out
                    .composer
                    .reset_password(to.email, to.username, &token, lifetime)
            }
        };
        let Mail {
            recipient,
            kind: mail_kind,
            message,
        } = match composed {
            Ok(mail) => mail,
            Err(e) => {
                tracing::warn!(user = %to.username, error = %e, "no mail written");
                return Ok(());
            }
        };
        email_token::insert(
            txn,
            NewEmailToken {
                token_hash,
                kind,
                user_id: to.user_id,
                email_key: db::email_key(to.email),
                token_version: to.token_version,
                created_at: now,
                expires_at: now.saturating_add(secs(lifetime)),
            },
        )
        .await?;
        mail_outbox::enqueue(txn, &recipient, mail_kind, message, now).await
    }

    /// After a commit that wrote a mail: the sender delivers it at once.
    pub(super) fn mail_written(&self) {
        if let Some(mail) = &self.rules.mail {
            mail.outbox.wake();
        }
    }
}
