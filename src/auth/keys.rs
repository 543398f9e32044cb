//! The signing keys of the asymmetric algorithms, `JWT_ALGORITHM=EdDSA` (Ed25519, RFC 8037:
//! [`Ed25519Key`]) and `RS256` (RSA, RFC 7518 §3.3: [`RsaKey`]), as one [`SigningKey`]: its
//! PKCS#8 PEM, public JWK and `kid` (the RFC 7638 thumbprint); and the timeline of a
//! rotation (which key signs, which are published) as a [`KeySet`].

use std::{fmt, time::Duration};

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use jsonwebtoken::{
    jwk::{Jwk, ThumbprintHash},
    Algorithm, DecodingKey,
};

mod ed25519;
mod rsa;

pub use self::{
    ed25519::Ed25519Key,
    rsa::{RsaKey, RSA_BITS},
};

/// Clock skew tolerated on a token's `exp`, `nbf` and `iat`, in seconds: a rule of
/// `token`'s validation, here because a retired key stays published until a token it
/// signed has expired with this leeway ([`KeySet`]). `token` uses these keys, not the
/// other way round.
pub const LEEWAY_SECS: u64 = 5;
const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "not a PEM private key (expected `{PEM_BEGIN}` … `{PEM_END}`, as `openssl genpkey` writes)"
    )]
    NotPem,
    #[error("the PEM private key is not an Ed25519 key in PKCS#8 form")]
    NotEd25519,
    #[error("the PEM private key is not an RSA key in PKCS#8 or PKCS#1 form")]
    NotRsa,
    #[error("the RSA key has {bits} bits; RS256 needs at least {RSA_BITS}")]
    RsaTooSmall { bits: usize },
}

/// The algorithms whose keys are published and rotated: `JWT_ALGORITHM` but HS256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8037).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 2] = [KeyAlgorithm::EdDsa, KeyAlgorithm::Rs256];

    /// The JOSE name, in JWS headers, JWKs and the `signing_keys` table.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDsa => "EdDSA",
            KeyAlgorithm::Rs256 => "RS256",
        }
    }

    /// jsonwebtoken's name for it.
    pub fn jwt(self) -> Algorithm {
        match self {
            KeyAlgorithm::EdDsa => Algorithm::EdDSA,
            KeyAlgorithm::Rs256 => Algorithm::RS256,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public key as its JWK's key-type members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyParams {
    /// `kty` `OKP`, `crv` `Ed25519` (RFC 8037 §2).
    Ed25519 { x: String },
    /// `kty` `RSA` (RFC 7518 §6.3.1).
    Rsa { n: String, e: String },
}

/// A signing key of either asymmetric algorithm. Never printed.
#[derive(Debug)]
pub enum SigningKey {
    Ed25519(Ed25519Key),
    Rsa(RsaKey),
}

impl From<Ed25519Key> for SigningKey {
    fn from(key: Ed25519Key) -> Self {
        SigningKey::Ed25519(key)
    }
}

impl From<RsaKey> for SigningKey {
    fn from(key: RsaKey) -> Self {
        SigningKey::Rsa(key)
    }
}

impl SigningKey {
    /// A fresh key of `algorithm` from the operating system's random generator.
    pub fn generate(algorithm: KeyAlgorithm) -> Self {
        match algorithm {
            KeyAlgorithm::EdDsa => Ed25519Key::generate().into(),
            KeyAlgorithm::Rs256 => RsaKey::generate().into(),
        }
    }

    /// Reads the PEM of a key of `algorithm`; a key of another algorithm is refused.
    pub fn from_pem(algorithm: KeyAlgorithm, pem: &str) -> Result<Self, KeyError> {
        Ok(match algorithm {
            KeyAlgorithm::EdDsa => Ed25519Key::from_pem(pem)?.into(),
            KeyAlgorithm::Rs256 => RsaKey::from_pem(pem)?.into(),
        })
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            SigningKey::Ed25519(_) => KeyAlgorithm::EdDsa,
            SigningKey::Rsa(_) => KeyAlgorithm::Rs256,
        }
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint of the public JWK, base64url.
    pub fn kid(&self) -> &str {
        match self {
            SigningKey::Ed25519(key) => key.kid(),
            SigningKey::Rsa(key) => key.kid(),
        }
    }

    /// The PKCS#8 PEM of the private key: what the database stores.
    pub fn to_pem(&self) -> String {
        match self {
            SigningKey::Ed25519(key) => key.to_pem(),
            SigningKey::Rsa(key) => key.to_pem(),
        }
    }

    /// The public key's JWK members.
    pub fn public_params(&self) -> PublicKeyParams {
        match self {
            SigningKey::Ed25519(key) => PublicKeyParams::Ed25519 {
                x: key.public_x().to_owned(),
            },
            SigningKey::Rsa(key) => PublicKeyParams::Rsa {
                n: key.public_n().to_owned(),
                e: key.public_e().to_owned(),
            },
        }
    }

    /// `base64url({"alg":…,"typ":"JWT","kid":…})`, the header of every token it signs.
    pub(crate) fn header_b64(&self) -> &str {
        match self {
            SigningKey::Ed25519(key) => key.header_b64(),
            SigningKey::Rsa(key) => key.header_b64(),
        }
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        match self {
            SigningKey::Ed25519(key) => key.decoding_key(),
            SigningKey::Rsa(key) => key.decoding_key(),
        }
    }

    /// The signature of `message`, base64url.
    pub(crate) fn sign_b64(&self, message: &[u8]) -> String {
        match self {
            SigningKey::Ed25519(key) => key.sign_b64(message),
            SigningKey::Rsa(key) => key.sign_b64(message),
        }
    }
}

/// The DER between `begin` and `end` in `pem`, if it is such a PEM.
fn pem_der(pem: &str, begin: &str, end: &str) -> Option<Vec<u8>> {
    let body = pem.trim().strip_prefix(begin)?.strip_suffix(end)?;
    let base64: String = body.split_ascii_whitespace().collect();
    STANDARD.decode(base64).ok()
}

/// The RFC 7638 SHA-256 thumbprint of a public key, base64url.
fn thumbprint(public: &DecodingKey, algorithm: Algorithm) -> String {
    // A JWK is made of any Ed25519 or RSA public key, and every JWK of these has a
    // thumbprint: this `expect` cannot fire.
    Jwk::from_decoding_key(public, Some(algorithm))
        .and_then(|jwk| jwk.thumbprint(ThumbprintHash::SHA256))
        .expect("an Ed25519 or RSA public key has a JWK thumbprint")
}

/// `base64url({"alg":…,"typ":"JWT","kid":…})`.
fn token_header_b64(algorithm: KeyAlgorithm, kid: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"{algorithm}","typ":"JWT","kid":"{kid}"}}"#
    ))
}

/// Where a key is in a rotation (see [`KeySet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet: resource servers fetch it before they see it in a token.
    Next,
    /// Published and signing.
    Active,
    /// Published and verifying, no longer signing: its tokens have not all expired.
    Retired,
    /// Every token it signed has expired: neither published nor accepted.
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Expired => "expired",
        }
    }
}

/// A key with the time (Unix seconds) it starts signing.
#[derive(Debug)]
pub struct ScheduledKey {
    pub generation: i32,
    pub key: SigningKey,
    /// When it was made (Unix seconds).
    pub created: u64,
    pub signs_from: u64,
}

/// A key's place in the set at some moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub generation: i32,
    pub kid: String,
    pub state: KeyState,
    pub created: u64,
    pub signs_from: u64,
    /// When its successor takes over; `None` while it has none.
    pub signs_until: Option<u64>,
    /// When the last token it signed expires and it stops being published.
    pub published_until: Option<u64>,
}

/// The keys of a rotation, by generation. Each key signs from its `signs_from` until the
/// next key's, then stays published and verifying until a token it signed at that moment
/// has expired (token lifetime + leeway). Every state follows from these times, so
/// replicas that read the same rows agree without talking to each other.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<ScheduledKey>,
    token_lifetime: Duration,
}

impl KeySet {
    pub fn new(mut keys: Vec<ScheduledKey>, token_lifetime: Duration) -> Self {
        keys.sort_by_key(|k| k.generation);
        Self {
            keys,
            token_lifetime,
        }
    }

    /// One key, signing from the beginning of time: a key read from a file.
    pub fn single(key: impl Into<SigningKey>) -> Self {
        Self::new(
            vec![ScheduledKey {
                generation: 1,
                key: key.into(),
                created: 0,
                signs_from: 0,
            }],
            Duration::ZERO,
        )
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The newest generation, if any.
    pub fn last(&self) -> Option<&ScheduledKey> {
        self.keys.last()
    }

    fn status_at(&self, i: usize, now: u64) -> KeyStatus {
        let key = &self.keys[i];
        let signs_until = self.keys.get(i + 1).map(|next| next.signs_from);
        let published_until =
            signs_until.map(|until| until + self.token_lifetime.as_secs() + LEEWAY_SECS);
        let state = if key.signs_from > now {
            KeyState::Next
        } else if signs_until.is_none_or(|until| until > now) {
            KeyState::Active
        } else if published_until.is_some_and(|until| until > now) {
            KeyState::Retired
        } else {
            KeyState::Expired
        };
        KeyStatus {
            generation: key.generation,
            kid: key.key.kid().to_owned(),
            state,
            created: key.created,
            signs_from: key.signs_from,
            signs_until,
            published_until,
        }
    }

    /// Every key's status at `now`, oldest first.
    pub fn statuses(&self, now: u64) -> Vec<KeyStatus> {
        (0..self.keys.len())
            .map(|i| self.status_at(i, now))
            .collect()
    }

    /// The key that signs at `now`: the newest that has started. (Should the clock stand
    /// before every key's start, the oldest, rather than none.)
    pub fn signing(&self, now: u64) -> Option<&SigningKey> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.signs_from <= now)
            .or(self.keys.first())
            .map(|k| &k.key)
    }

    /// The keys published at `now`: next, active and retired ones.
    pub fn published(&self, now: u64) -> impl Iterator<Item = &SigningKey> {
        (0..self.keys.len())
            .filter(move |&i| self.status_at(i, now).state != KeyState::Expired)
            .map(|i| &self.keys[i].key)
    }

    /// The published key named `kid`, if any: the only keys a token may be signed with.
    pub fn verifying(&self, kid: &str, now: u64) -> Option<&SigningKey> {
        self.published(now).find(|k| k.kid() == kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_timeline_moves_next_active_retired_expired() {
        let lifetime = Duration::from_secs(100);
        let set = KeySet::new(
            vec![
                ScheduledKey {
                    generation: 1,
                    key: Ed25519Key::generate().into(),
                    created: 0,
                    signs_from: 0,
                },
                ScheduledKey {
                    generation: 2,
                    key: Ed25519Key::generate().into(),
                    created: 0,
                    signs_from: 1000,
                },
            ],
            lifetime,
        );
        let states =
            |now| -> Vec<KeyState> { set.statuses(now).into_iter().map(|s| s.state).collect() };
        use KeyState::*;
        assert_eq!(states(999), [Active, Next]);
        assert_eq!(states(1000), [Retired, Active]);
        assert_eq!(states(1000 + 100 + LEEWAY_SECS - 1), [Retired, Active]);
        assert_eq!(states(1000 + 100 + LEEWAY_SECS), [Expired, Active]);
        let first = set.keys[0].key.kid().to_owned();
        assert_eq!(set.signing(999).unwrap().kid(), first);
        assert_ne!(set.signing(1000).unwrap().kid(), first);
        assert!(set.verifying(&first, 1100).is_some());
        assert!(set.verifying(&first, 1100 + LEEWAY_SECS).is_none());
        assert_eq!(set.published(999).count(), 2);
        assert_eq!(set.published(2000).count(), 1);
    }
}
