//! The signing keys of `JWT_ALGORITHM=EdDSA` (Ed25519) and `RS256` (RSA) as stored in the
//! database: loaded at start (the first one generated when there is none), reloaded by
//! every replica on a timer and when a token names a key it does not know, rotated and
//! listed by `gatehouse keys`. Each algorithm has a rotation of its own, and only the keys
//! of the configured one are ever loaded.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use super::{Accounts, AccountsError};
use crate::{
    auth::{
        keys::{
            KeyAlgorithm, KeySet, KeyState, KeyStatus, PublicKeyParams, ScheduledKey, SigningKey,
        },
        token::{unix_now, Claims, TokenError},
    },
    db::{signing_key, Db},
};

/// A token naming an unknown key reloads the keys at most this often, so that tokens
/// with made-up `kid`s cannot turn into a database query each.
pub const RELOAD_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest token lifetime any configuration allows (`ACCESS_TOKEN_EXPIRE_MINUTES`
/// at most 43200): a key retired longer ago than this verifies nothing anywhere.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(43_200 * 60);

/// How often each replica reloads the keys: well within the JWKS max-age, which is how
/// long a rotated key waits before it signs, so every replica knows it by then.
pub fn reload_period(jwks_max_age: Duration) -> Duration {
    (jwks_max_age / 2).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// How long a new key is published before it signs: a resource server's cached JWKS
/// (max-age) may have been fetched from a replica that had not reloaded yet.
pub fn publish_before_signing(jwks_max_age: Duration) -> Duration {
    jwks_max_age + RELOAD_MIN_INTERVAL
}

/// When the keys were last reloaded for an unknown `kid`.
#[derive(Debug, Default)]
pub struct KeyReload {
    last: Mutex<Option<Instant>>,
}

impl KeyReload {
    /// Whether a reload may start now; if so, the next may start only after the interval.
    fn start(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < RELOAD_MIN_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

fn unix(time: DateTime<Utc>) -> u64 {
    u64::try_from(time.timestamp()).unwrap_or(0)
}

fn from_unix(secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The stored keys of `algorithm` as a [`KeySet`] for tokens of `token_lifetime`.
async fn stored_key_set(
    db: &Db,
    algorithm: KeyAlgorithm,
    token_lifetime: Duration,
) -> Result<KeySet, AccountsError> {
    let keys = signing_key::of_algorithm(db, algorithm.as_str())
        .await?
        .into_iter()
        .map(|row| {
            // The kid is the key's own thumbprint; the stored copy is for people reading rows.
            Ok(ScheduledKey {
                generation: row.generation,
                key: SigningKey::from_pem(algorithm, &row.private_key)?,
                created: unix(row.created_at),
                signs_from: unix(row.signs_from),
            })
        })
        .collect::<Result<Vec<_>, AccountsError>>()?;
    Ok(KeySet::new(keys, token_lifetime))
}

/// Stores `key` as generation `generation`, signing from `signs_from`; whether it was
/// stored (not if another process stored that generation first).
async fn store_key(
    db: &Db,
    generation: i32,
    key: &SigningKey,
    signs_from: u64,
) -> Result<bool, AccountsError> {
    let new = signing_key::NewKey {
        generation,
        kid: key.kid().to_owned(),
        algorithm: key.algorithm().as_str(),
        private_key: key.to_pem(),
        signs_from: from_unix(signs_from),
    };
    Ok(signing_key::insert_if_absent(db, new).await?)
}

/// The stored keys of `algorithm`; on its first start, a key generated now and signing at
/// once (no token exists yet that a resource server would need it for).
pub async fn load_key_set(
    db: &Db,
    algorithm: KeyAlgorithm,
    token_lifetime: Duration,
) -> Result<KeySet, AccountsError> {
    let set = stored_key_set(db, algorithm, token_lifetime).await?;
    if !set.is_empty() {
        return Ok(set);
    }
    if store_key(db, 1, &generate(algorithm).await, unix_now()).await? {
        tracing::info!(algorithm = %algorithm, "generated the first signing key");
    }
    // Read back: a replica starting at the same moment may have stored its key first.
    stored_key_set(db, algorithm, token_lifetime).await
}

/// A new key of `algorithm`, made off the async threads: an RSA key takes a while.
async fn generate(algorithm: KeyAlgorithm) -> SigningKey {
    match tokio::task::spawn_blocking(move || SigningKey::generate(algorithm)).await {
        Ok(key) => key,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Adds the next key, published at once and signing after `publish_for`, and deletes the
/// keys that can no longer verify any token. Returns the new key's status.
pub async fn rotate_key(
    db: &Db,
    algorithm: KeyAlgorithm,
    token_lifetime: Duration,
    publish_for: Duration,
) -> Result<KeyStatus, AccountsError> {
    let key = generate(algorithm).await;
    loop {
        let set = load_key_set(db, algorithm, token_lifetime).await?;
        let now = unix_now();
        let last = set.last().map_or((0, 0), |k| (k.generation, k.signs_from));
        // Never before the newest key: generations sign in order. `now` is rounded down
        // to the second, so one more second makes the wait at least `publish_for`.
        let signs_from = (now + publish_for.as_secs() + 1).max(last.1);
        // Lost to a rotation running at the same time: go again after it.
        if !store_key(db, last.0 + 1, &key, signs_from).await? {
            continue;
        }
        let expired = stored_key_set(db, algorithm, MAX_TOKEN_LIFETIME).await?;
        let statuses = expired.statuses(now);
        if let Some(first_live) = statuses.iter().find(|s| s.state != KeyState::Expired) {
            signing_key::delete_before(db, algorithm.as_str(), first_live.generation).await?;
        }
        let set = stored_key_set(db, algorithm, token_lifetime).await?;
        return set
            .statuses(now)
            .into_iter()
            .find(|s| s.kid == key.kid())
            .ok_or_else(|| {
                AccountsError::Database(sea_orm::DbErr::RecordNotFound(key.kid().into()))
            });
    }
}

/// The status now of every stored key of `algorithm`.
pub async fn key_statuses(
    db: &Db,
    algorithm: KeyAlgorithm,
    token_lifetime: Duration,
) -> Result<Vec<KeyStatus>, AccountsError> {
    Ok(stored_key_set(db, algorithm, token_lifetime)
        .await?
        .statuses(unix_now()))
}

impl Accounts {
    /// Rereads the stored keys, learning of a rotation made by `gatehouse keys rotate`.
    pub async fn reload_signing_keys(&self) -> Result<(), AccountsError> {
        let Some(algorithm) = self.tokens.algorithm().key_algorithm() else {
            return Ok(());
        };
        let lifetime = Duration::from_secs(self.tokens.lifetime_secs());
        let set = stored_key_set(&self.db, algorithm, lifetime).await?;
        if !set.is_empty() {
            self.tokens.replace_key_set(set);
        }
        Ok(())
    }

    /// The claims of `token`. A `kid` this replica does not know may be a key rotated in
    /// since its last reload: reload (at most once per [`RELOAD_MIN_INTERVAL`]) and retry.
    pub(super) async fn validate_token(&self, token: &str) -> Result<Claims, TokenError> {
        let now = unix_now();
        match self.tokens.validate_access_token(token, now) {
            Err(TokenError::UnknownKid) if self.key_reload.as_ref().is_some_and(|r| r.start()) => {
                if let Err(e) = self.reload_signing_keys().await {
                    tracing::warn!(error = %e, "could not reload the signing keys");
                }
                self.tokens.validate_access_token(token, now)
            }
            other => other,
        }
    }
}

impl Accounts {
    /// The public keys to publish now, newest rotation included: the stored keys are
    /// reread first (at most once per [`RELOAD_MIN_INTERVAL`]), so a rotated key is
    /// published at once by every replica. Empty under HS256.
    pub async fn published_keys(&self) -> Vec<PublishedKey> {
        if self.key_reload.as_ref().is_some_and(|r| r.start()) {
            if let Err(e) = self.reload_signing_keys().await {
                tracing::warn!(error = %e, "could not reload the signing keys");
            }
        }
        let (Some(set), Some(algorithm)) = (
            self.tokens.key_set(),
            self.tokens.algorithm().key_algorithm(),
        ) else {
            return Vec::new();
        };
        set.published(unix_now())
            .filter(|key| key.algorithm() == algorithm)
            .map(|key| PublishedKey {
                kid: key.kid().to_owned(),
                algorithm: key.algorithm(),
                params: key.public_params(),
            })
            .collect()
    }
}

/// A public key: its id, its algorithm and the key itself (base64url members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub params: PublicKeyParams,
}
