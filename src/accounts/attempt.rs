//! A login attempt counted as a failure before its password is checked, and taken back
//! when it succeeds: so a burst of concurrent logins cannot get more password checks
//! than the limits allow, on one replica or many.
//!
//! Which account window an attempt counts against depends on the client: from an address
//! the user has logged in from before (a "known client", after OWASP's device cookies),
//! against that account-and-address pair's own window; from anywhere else, against the
//! account's shared window. Guesses from elsewhere can then lock out unknown clients but
//! not the owner's, and a guesser on a known address still has its own lockout. Every
//! attempt also counts against its address's window.

use super::{Accounts, AccountsError};
use crate::{
    auth::throttle::{self, Limit, KNOWN_CLIENT_SECS},
    db::{
        known_client,
        login_failure::{self, Scope},
    },
};

/// One reserved failure in one window.
struct Reserved {
    scope: Scope,
    subject: String,
    window_start: i64,
}

/// A login attempt, counted in advance against its account window and its address
/// window. If the password turns out wrong nothing more is written; a success or an
/// error that checked no password gives the count back.
pub(super) struct Attempt {
    account: Reserved,
    address: Reserved,
    /// Until when the client is known for the account, if it is.
    known_until: Option<i64>,
}

impl Accounts {
    /// Counts an attempt on `account` (the username as counted) from `address` (its
    /// address key), or [`AccountsError::TooManyAttempts`] when either window is used up.
    /// Answers alike for existing and unknown usernames.
    pub(super) async fn reserve_attempt(
        &self,
        account: &str,
        address: &str,
    ) -> Result<Attempt, AccountsError> {
        let now = throttle::now();
        let known_until = known_client::known_until(&self.db, account, address, now).await?;
        let (scope, subject) = match known_until {
            Some(_) => (Scope::KnownClient, format!("{address} {account}")),
            None => (Scope::Account, account.to_owned()),
        };
        let account_limit = self.limits.per_account;
        let address_limit = self.limits.per_address;
        let Some(address_start) = self
            .reserve(Scope::Address, address, address_limit, now)
            .await?
        else {
            return Err(self.refusal(&subject, scope, address, now).await?);
        };
        let address = Reserved {
            scope: Scope::Address,
            subject: address.to_owned(),
            window_start: address_start,
        };
        let Some(account_start) = self.reserve(scope, &subject, account_limit, now).await? else {
            self.give_back(&address).await;
            return Err(self.refusal(&subject, scope, &address.subject, now).await?);
        };
        Ok(Attempt {
            account: Reserved {
                scope,
                subject,
                window_start: account_start,
            },
            address,
            known_until,
        })
    }

    async fn reserve(
        &self,
        scope: Scope,
        subject: &str,
        limit: Limit,
        now: i64,
    ) -> Result<Option<i64>, sea_orm::DbErr> {
        login_failure::reserve(
            &self.db,
            scope,
            subject,
            now,
            limit.open_since(now),
            limit.max_failures,
        )
        .await
    }

    /// The 429 for an attempt refused at `now`: `Retry-After` is when both windows allow
    /// logins again.
    async fn refusal(
        &self,
        account: &str,
        scope: Scope,
        address: &str,
        now: i64,
    ) -> Result<AccountsError, sea_orm::DbErr> {
        let window = |w: Option<login_failure::Window>| {
            w.map(|w| throttle::FailureWindow {
                started_at: w.started_at,
                failures: w.failures,
            })
        };
        let account_window = login_failure::window(&self.db, scope, account).await?;
        let address_window = login_failure::window(&self.db, Scope::Address, address).await?;
        let retry_after = self
            .limits
            .per_account
            .retry_after(window(account_window), now)
            .max(
                self.limits
                    .per_address
                    .retry_after(window(address_window), now),
            )
            // A window that ended in between: try again at once, but not at 0.
            .unwrap_or(1);
        Ok(AccountsError::TooManyAttempts { retry_after })
    }

    /// The attempt succeeded: it was no failure. The account's window (shared, or the
    /// known client's own) starts afresh, the address gets its one attempt back but keeps
    /// its other failures (a valid login must not wipe a spray of guesses), and the
    /// address becomes, or stays, known for `user_id`.
    pub(super) async fn attempt_succeeded(
        &self,
        attempt: Attempt,
        user_id: i32,
    ) -> Result<(), AccountsError> {
        let Attempt {
            account,
            address,
            known_until,
        } = attempt;
        login_failure::clear(&self.db, account.scope, &account.subject).await?;
        self.give_back(&address).await;
        let now = throttle::now();
        // Refreshed at most daily: a login from a known client then costs no write for it.
        if known_until.is_none_or(|until| until - now < KNOWN_CLIENT_SECS - 86_400) {
            if let Err(e) =
                known_client::remember(&self.db, user_id, &address.subject, now + KNOWN_CLIENT_SECS)
                    .await
            {
                // The login succeeded either way; the next one tries again.
                tracing::warn!(error = %e, "could not record a known client");
            }
        }
        Ok(())
    }

    /// The attempt ended without checking a password (a database or hashing error): it
    /// was no failure either.
    pub(super) async fn attempt_abandoned(&self, attempt: Attempt) {
        self.give_back(&attempt.account).await;
        self.give_back(&attempt.address).await;
    }

    /// Takes one reserved failure back; best effort, as the error already answered.
    async fn give_back(&self, reserved: &Reserved) {
        if let Err(e) = login_failure::release(
            &self.db,
            reserved.scope,
            &reserved.subject,
            reserved.window_start,
        )
        .await
        {
            tracing::warn!(error = %e, "could not take back a reserved login attempt");
        }
    }
}
