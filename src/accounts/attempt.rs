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
//!
//! A database that cannot take the write in time (read-only, locked by another writer,
//! full) must still serve logins, as it serves every other read: the attempt then goes on
//! uncounted, checked against the windows as they stand, and a failure is counted after
//! the password check (which answers 503 if that write fails too).

use std::time::Duration;

use sea_orm::{DatabaseTransaction, TransactionTrait};

use super::{Accounts, AccountsError};
use crate::{
    auth::throttle::{self, Limit, KNOWN_CLIENT_SECS},
    db::{
        known_client,
        login_failure::{self, Scope},
    },
};

/// How long the database may take to count an attempt in advance, once a connection is
/// free, before the login goes on uncounted: far more than the milliseconds two writes
/// take even under a burst, far less than the 5 s a locked SQLite database makes a writer
/// wait.
const RESERVE_DEADLINE: Duration = Duration::from_millis(500);

/// One reserved failure in one window.
struct Reserved {
    scope: Scope,
    subject: String,
    window_start: i64,
}

/// A login attempt, normally counted in advance against its account window and its
/// address window. If the password turns out wrong nothing more is written; a success or
/// an error that checked no password gives the count back.
pub(super) struct Attempt {
    /// The account window's scope and subject.
    account: (Scope, String),
    address: String,
    /// The reservations, in the account and the address window; `None` when the database
    /// could not take them.
    counted: Option<(Reserved, Reserved)>,
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
        // Waiting for a pooled connection is load, not a stalled database: not timed.
        let txn = self.db.begin().await?;
        // Only the statements are timed, never the commit: a commit cut off by a timer may
        // still have happened, and the attempt would then be counted twice.
        let reserved = tokio::time::timeout(
            RESERVE_DEADLINE,
            self.reserve_both(&txn, scope, &subject, address, now),
        )
        .await;
        let counted = match reserved {
            Ok(Ok(Some(counted))) => match txn.commit().await {
                Ok(()) => Some(counted),
                Err(e) => {
                    tracing::warn!(error = %e, "could not count a login attempt in advance; counting it after the check");
                    None
                }
            },
            not_counted => {
                // Rolled back at once, not at the end of the login: the reservation's
                // write lock must not be held through the reads and the hash that follow.
                drop(txn);
                match not_counted {
                    Ok(Ok(None)) => {
                        return Err(self.refusal(&subject, scope, address, now).await?);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "could not count a login attempt in advance; counting it after the check");
                    }
                    _ => tracing::warn!(
                        "counting a login attempt in advance timed out; counting it after the check"
                    ),
                }
                None
            }
        };
        if counted.is_none() {
            self.check_uncounted(scope, &subject, address, now).await?;
        }
        Ok(Attempt {
            account: (scope, subject),
            address: address.to_owned(),
            counted,
            known_until,
        })
    }

    /// Reserves the attempt in the address window, then in the account window (`scope`,
    /// `subject`), in `txn`; `None` if either is used up (then roll `txn` back).
    async fn reserve_both(
        &self,
        txn: &DatabaseTransaction,
        scope: Scope,
        subject: &str,
        address: &str,
        now: i64,
    ) -> Result<Option<(Reserved, Reserved)>, sea_orm::DbErr> {
        let reserve = |scope, subject, limit: Limit| {
            login_failure::reserve(
                txn,
                scope,
                subject,
                now,
                limit.open_since(now),
                limit.max_failures,
            )
        };
        let Some(address_start) = reserve(Scope::Address, address, self.limits.per_address).await?
        else {
            return Ok(None);
        };
        let Some(account_start) = reserve(scope, subject, self.limits.per_account).await? else {
            return Ok(None);
        };
        let reserved = |scope, subject: &str, window_start| Reserved {
            scope,
            subject: subject.to_owned(),
            window_start,
        };
        Ok(Some((
            reserved(scope, subject, account_start),
            reserved(Scope::Address, address, address_start),
        )))
    }

    /// Without a reservation: refuses if either window is used up as it stands.
    async fn check_uncounted(
        &self,
        scope: Scope,
        subject: &str,
        address: &str,
        now: i64,
    ) -> Result<(), AccountsError> {
        match self.retry_after(subject, scope, address, now).await? {
            Some(retry_after) => Err(AccountsError::TooManyAttempts { retry_after }),
            None => Ok(()),
        }
    }

    /// The 429 for an attempt refused at `now`.
    async fn refusal(
        &self,
        account: &str,
        scope: Scope,
        address: &str,
        now: i64,
    ) -> Result<AccountsError, sea_orm::DbErr> {
        let retry_after = self.retry_after(account, scope, address, now).await?;
        // A window that ended in between: try again at once, but not at 0.
        Ok(AccountsError::TooManyAttempts {
            retry_after: retry_after.unwrap_or(1),
        })
    }

    /// Seconds until both windows allow logins again at `now`; `None` if they do now.
    async fn retry_after(
        &self,
        account: &str,
        scope: Scope,
        address: &str,
        now: i64,
    ) -> Result<Option<u64>, sea_orm::DbErr> {
        let window = |w: Option<login_failure::Window>| {
            w.map(|w| throttle::FailureWindow {
                started_at: w.started_at,
                failures: w.failures,
            })
        };
        let account_window = login_failure::window(&self.db, scope, account).await?;
        let address_window = login_failure::window(&self.db, Scope::Address, address).await?;
        let account_wait = self
            .limits
            .per_account
            .retry_after(window(account_window), now);
        let address_wait = self
            .limits
            .per_address
            .retry_after(window(address_window), now);
        Ok(account_wait.max(address_wait))
    }

    /// The password was wrong. A counted attempt is a failure already; an uncounted one
    /// is counted now, and if the database refuses that too, the caller gets its error.
    pub(super) async fn attempt_failed(&self, attempt: Attempt) -> Result<(), AccountsError> {
        if attempt.counted.is_some() {
            return Ok(());
        }
        let now = throttle::now();
        let (scope, subject) = &attempt.account;
        for (scope, subject, limit) in [
            (*scope, subject.as_str(), self.limits.per_account),
            (
                Scope::Address,
                attempt.address.as_str(),
                self.limits.per_address,
            ),
        ] {
            // No limit here: the check before the hash already let this attempt through.
            login_failure::reserve(
                &self.db,
                scope,
                subject,
                now,
                limit.open_since(now),
                u32::MAX,
            )
            .await?;
        }
        Ok(())
    }

    /// The attempt succeeded: it was no failure. The account's window (shared, or the
    /// known client's own) starts afresh, the address gets its one attempt back but keeps
    /// its other failures (a valid login must not wipe a spray of guesses), and the
    /// address becomes, or stays, known for `user_id`. An uncounted attempt writes
    /// nothing: the database would not take it in time.
    pub(super) async fn attempt_succeeded(
        &self,
        attempt: Attempt,
        user_id: i32,
    ) -> Result<(), AccountsError> {
        let Some((account, address)) = attempt.counted else {
            return Ok(());
        };
        login_failure::clear(&self.db, account.scope, &account.subject).await?;
        self.give_back(&address).await;
        let now = throttle::now();
        // Refreshed at most daily: a login from a known client then costs no write for it.
        let known_until = attempt.known_until;
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

    /// The attempt ended without a verdict on the password (a database or hashing error,
    /// or a second factor still to come): it was no failure either. Both windows at once:
    /// on a database that has just gone away each write waits out the connect timeout, and
    /// the answer should wait for it once.
    pub(super) async fn attempt_abandoned(&self, attempt: Attempt) {
        if let Some((account, address)) = attempt.counted {
            tokio::join!(self.give_back(&account), self.give_back(&address));
        }
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
