//! What runs beside the server while it serves: the purge of expired rows and, when the
//! signing keys live in the database, their reload. `run_until_stopped` starts and stops
//! both.

use std::time::Duration;

use crate::{
    accounts::Accounts,
    auth::throttle,
    db::{self, Db},
};

/// Deletes ended failed-login windows, expired known clients, sessions and refresh
/// tokens now and then, so the tables hold only live rows.
pub(super) async fn purge_expired(db: Db, accounts: Accounts) {
    const EVERY: Duration = Duration::from_secs(600);
    // Longer than any window: a row this old has ended whatever its scope.
    const AGE: i64 = 2 * 3600;
    // Not at start-up: a fresh process has nothing of its own to purge yet.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
    loop {
        ticks.tick().await;
        let cutoff = throttle::now() - AGE;
        match db::login_failure::purge_before(&db, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged ended failed-login windows"),
            Err(e) => tracing::warn!(error = %e, "could not purge failed-login windows"),
        }
        match db::known_client::purge_expired(&db, throttle::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired known clients"),
            Err(e) => tracing::warn!(error = %e, "could not purge known clients"),
        }
        match db::email_token::purge_expired(&db, throttle::now() - AGE).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired mail tokens"),
            Err(e) => tracing::warn!(error = %e, "could not purge mail tokens"),
        }
        match accounts.purge_expired_sessions().await {
            Ok((0, 0)) => {}
            Ok((sessions, refresh_tokens)) => {
                tracing::debug!(sessions, refresh_tokens, "purged expired sessions")
            }
            Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
        }
        match accounts.purge_expired_sign_ins().await {
            Ok((0, 0)) => {}
            Ok((codes, browser_sessions)) => {
                tracing::debug!(codes, browser_sessions, "purged expired sign-ins")
            }
            Err(e) => tracing::warn!(error = %e, "could not purge expired sign-ins"),
        }
    }
}

/// Rereads the database's signing keys every `period`, so that this replica knows a
/// rotated key before it starts signing.
pub(super) async fn reload_signing_keys(accounts: Accounts, period: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        if let Err(e) = accounts.reload_signing_keys().await {
            tracing::warn!(error = %e, "could not reload the signing keys");
        }
    }
}
