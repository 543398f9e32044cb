//! The sender: one task per replica that delivers the outbox (`db::mail_outbox`).
//!
//! It claims due mails (a lease no other replica's sender takes), hands each to the relay
//! and records the outcome; a failure of any kind (the relay down, a 4xx, a 5xx from a
//! misconfigured relay) makes the mail due again after an exponential backoff, from 1 s
//! up to `MAIL_RETRY_MAX_SECS`: a mail is delayed, never dropped. Nothing is held in
//! memory: a restarted process, or another replica, takes over where it left off. It
//! wakes when this replica commits a mail ([`Outbox::wake`]), when a retry is due, and
//! every few seconds to pick up what other replicas wrote.
//!
//! Delivery is at least once: a process that dies between the relay's `250` and writing
//! it down sends the mail again when the lease lapses (with the same `Message-ID`).

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rand::RngCore;
use tokio::sync::{watch, Notify};

use super::{
    compose::text_part,
    relay::{DeliveryError, Relay},
};
use crate::db::{mail_outbox, Db};

/// How long a claim holds a mail: far longer than one delivery can take (a connection and
/// a handful of replies, each at most `RELAY_TIMEOUT`), so no two replicas send it at once.
const LEASE_SECS: i64 = 300;
/// Mails claimed at a time.
const BATCH: u64 = 10;
/// How often a sender looks for mails other replicas wrote (or whose claim lapsed).
const POLL: Duration = Duration::from_secs(5);
/// How long a delivered mail's row is kept (without its text), then purged.
const KEEP_DELIVERED_SECS: i64 = 3600;

/// Default of `MAIL_RETRY_MAX_SECS`.
pub const DEFAULT_RETRY_MAX_SECS: u64 = 300;

/// Where mails go.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// To the SMTP relay of `SMTP_URL`.
    Relay(Box<Relay>),
    /// Into the log (`serve --demo` without `SMTP_URL`): a developer sees the link.
    Log,
}

/// The handle through which a committed mail wakes this replica's sender at once.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    notify: Arc<Notify>,
}

impl Outbox {
    /// A mail was committed to the outbox: deliver it now rather than at the next poll.
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

/// What the sender needs.
pub struct Sender {
    pub db: Db,
    pub delivery: Delivery,
    /// The envelope sender (`MAIL_FROM`'s address).
    pub from: String,
    pub retry_max: Duration,
    pub outbox: Outbox,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Seconds before attempt `attempts + 1`: 1, 2, 4, ... up to `max`.
pub fn backoff_secs(attempts: i32, max: Duration) -> u64 {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    1u64.checked_shl(exponent)
        .unwrap_or(u64::MAX)
        .min(max.as_secs().max(1))
}

impl Sender {
    /// Delivers until `stop` turns true; a delivery in progress is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut claim = [0u8; 12];
        rand::rng().fill_bytes(&mut claim);
        let claim = hex::encode(claim);
        let mut last_purge = 0;
        loop {
            if *stop.borrow() {
                return;
            }
            let now = now_millis() / 1000;
            let claimed = match mail_outbox::claim(&self.db, &claim, now, LEASE_SECS, BATCH).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the mail outbox");
                    Vec::new()
                }
            };
            let full = claimed.len() as u64 == BATCH;
            for mail in claimed {
                self.deliver(&claim, mail).await;
                if *stop.borrow() {
                    return;
                }
            }
            if now - last_purge > 600 {
                last_purge = now;
                match mail_outbox::purge_delivered(&self.db, now - KEEP_DELIVERED_SECS).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "purged delivered mails"),
                    Err(e) => tracing::warn!(error = %e, "could not purge delivered mails"),
                }
            }
            if full {
                continue;
            }
            let wait = self.until_next_due().await;
            tokio::select! {
                () = self.outbox.notify.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// How long to sleep: until the next mail is due, at most [`POLL`].
    async fn until_next_due(&self) -> Duration {
        match mail_outbox::next_due(&self.db).await {
            Ok(Some(due)) => {
                let millis = due.saturating_mul(1000).saturating_sub(now_millis());
                Duration::from_millis(u64::try_from(millis).unwrap_or(0)).min(POLL)
            }
            Ok(None) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the mail outbox");
                POLL
            }
        }
    }

    async fn deliver(&self, claim: &str, mail: mail_outbox::Claimed) {
        let Some(message) = mail.message.as_deref() else {
            return;
        };
        let outcome = match &self.delivery {
            Delivery::Relay(relay) => {
                relay
                    .send(&self.from, &mail.recipient, message.as_bytes())
                    .await
            }
            Delivery::Log => {
                log_mail(&mail.recipient, mail.kind.as_str(), message);
                Ok("logged".to_owned())
            }
        };
        let now = now_millis() / 1000;
        let recorded = match outcome {
            Ok(answer) => {
                tracing::info!(id = mail.id, kind = %mail.kind, attempts = mail.attempts, %answer, "mail delivered");
                mail_outbox::delivered(&self.db, mail.id, claim, now).await
            }
            Err(e) => {
                let wait = backoff_secs(mail.attempts, self.retry_max);
                let level_warn = matches!(e, DeliveryError::Refused { code: 500.., .. });
                if level_warn || mail.attempts > 3 {
                    tracing::warn!(id = mail.id, kind = %mail.kind, attempts = mail.attempts, error = %e, retry_in_secs = wait, "mail not delivered; retrying");
                } else {
                    tracing::info!(id = mail.id, kind = %mail.kind, attempts = mail.attempts, error = %e, retry_in_secs = wait, "mail not delivered; retrying");
                }
                let retry_at = now.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX));
                mail_outbox::failed(&self.db, mail.id, claim, retry_at, &e.to_string()).await
            }
        };
        if let Err(e) = recorded {
            // The lease lapses by itself; the mail is then sent again.
            tracing::warn!(id = mail.id, error = %e, "could not record a delivery");
        }
    }
}

/// `serve --demo` without a relay: the mail's text, with its link, goes to the log (the
/// one place a token is ever logged, and only in the demo).
fn log_mail(recipient: &str, kind: &str, message: &str) {
    let text = text_part(message).unwrap_or_default();
    let link = text
        .split_whitespace()
        .find(|word| word.starts_with("http") && word.contains("token="))
        .unwrap_or_default();
    tracing::info!(to = %recipient, %kind, %link, "mail (serve --demo without SMTP_URL: written here, not sent)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_maximum() {
        let max = Duration::from_secs(300);
        let waits: Vec<u64> = (1..=11).map(|a| backoff_secs(a, max)).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff_secs(1000, max), 300);
        assert_eq!(backoff_secs(3, Duration::from_secs(1)), 1);
    }
}
