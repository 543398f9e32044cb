//! Signup (`SIGNUP=open`): a person creates their own account, which holds `me items`
//! and gets a verification mail, written in the transaction that creates it.
//!
//! Everything that can be checked without the database is checked first, then the
//! signup is counted against its client address (before the password is hashed, so a
//! flood of signups gets no more hashes than the limit), and the database's UNIQUE
//! indexes decide a taken name or address, so two signups that race cannot both win.

use std::net::IpAddr;

use sea_orm::TransactionTrait;
use secrecy::{ExposeSecret, SecretString};

use super::{
    address_key,
    mail_out::{MailFor, SIGNUPS_PER_ADDRESS_PER_HOUR},
    manage::{self, check_profile_field},
    now_secs, usernames, Accounts, AccountsError, Scopes,
};
use crate::{
    auth::throttle::{FailureWindow, Limit},
    db::{
        email_token::Kind,
        login_failure,
        user::{self, NewUser},
        user_email,
    },
};

/// What a person signs up with.
#[derive(Debug)]
pub struct Signup {
    pub username: String,
    pub email: String,
    pub password: SecretString,
    pub full_name: Option<String>,
}

const SIGNUP_WINDOW: Limit = Limit {
    max_failures: SIGNUPS_PER_ADDRESS_PER_HOUR,
    window_secs: 3600,
};

/// `email` trimmed, if it is an address a mail can be sent to.
pub(super) fn mailable(field: &'static str, email: &str) -> Result<String, AccountsError> {
    check_profile_field(field, Some(email))?;
    let email = email.trim();
    if email.parse::<lettre::Address>().is_err() {
        return Err(AccountsError::Invalid {
            field,
            message: "value is not a valid email address".to_owned(),
        });
    }
    Ok(email.to_owned())
}

impl Accounts {
    /// Checks `password` against the password policy; `field` names it in the refusal.
    pub fn check_new_password(
        &self,
        field: &'static str,
        password: &SecretString,
    ) -> Result<(), AccountsError> {
        self.rules
            .password_policy
            .check(password.expose_secret())
            .map_err(|violation| AccountsError::WeakPassword { field, violation })
    }

    /// Creates the account of `signup` from `client`; the user as stored.
    pub async fn sign_up(
        &self,
        client: Option<IpAddr>,
        signup: Signup,
    ) -> Result<user::Model, AccountsError> {
        if !self.rules.signup_open {
            return Err(AccountsError::SignupClosed);
        }
        let Some(mail_out) = self.rules.mail.clone() else {
            return Err(AccountsError::MailNotConfigured);
        };
        let username = usernames::prepare(&signup.username)?;
        let email = mailable("email", &signup.email)?;
        check_profile_field("full_name", signup.full_name.as_deref())?;
        self.check_new_password("password", &signup.password)?;
        self.count_signup(client).await?;
        let hashed_password = self.hasher.hash(signup.password).await?;

        let now = now_secs();
        let txn = self.db.begin().await?;
        let new = NewUser {
            username_skeleton: Some(usernames::look_alike_key(&username)),
            username: username.clone(),
            email: Some(email.clone()),
            full_name: signup.full_name,
            hashed_password,
            disabled: false,
            scopes: Some(Scopes::DEFAULT_HELD.to_string()),
        };
        manage::insert_user(&txn, new).await?;
        let user = user::find_in(&txn, &username)
            .await?
            .ok_or_else(|| AccountsError::NoSuchUser(username.clone()))?;
        if self.count_mail(&txn, &email, now).await? {
            let to = MailFor {
                user_id: user.id,
                username: &user.username,
                token_version: user.token_version,
                email: &email,
            };
            self.enqueue_token_mail(&txn, &mail_out, Kind::Verify, to, now)
                .await?;
        }
        txn.commit().await?;
        self.mail_written();
        tracing::info!(user = %user.username, "signed up");
        Ok(user)
    }

    /// Counts a signup from `client`, or [`AccountsError::TooManySignups`] past the limit.
    async fn count_signup(&self, client: Option<IpAddr>) -> Result<(), AccountsError> {
        let subject = client.map_or_else(|| "unknown".to_owned(), address_key);
        let now = now_secs();
        let counted = login_failure::reserve(
            &self.db,
            login_failure::Scope::Signup,
            &subject,
            now,
            SIGNUP_WINDOW.open_since(now),
            SIGNUP_WINDOW.max_failures,
        )
        .await?;
        if counted.is_some() {
            return Ok(());
        }
        let window = login_failure::window(&self.db, login_failure::Scope::Signup, &subject)
            .await?
            .map(|w| FailureWindow {
                started_at: w.started_at,
                failures: w.failures,
            });
        Err(AccountsError::TooManySignups {
            retry_after: SIGNUP_WINDOW.retry_after(window, now).unwrap_or(1),
        })
    }

    /// The user `id`, as stored now.
    pub(super) async fn user_by_id(&self, id: i32) -> Result<user::Model, AccountsError> {
        user_email::find_by_id(&self.db, id)
            .await?
            .ok_or_else(|| AccountsError::NoSuchUser(id.to_string()))
    }
}
