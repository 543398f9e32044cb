//! Ed25519 signing keys for `JWT_ALGORITHM=EdDSA` (RFC 8037): generating one, reading and
//! writing its PKCS#8 PEM, its public JWK and `kid` (the RFC 7638 thumbprint), and the
//! timeline of a rotation (which key signs, which are published) as a [`KeySet`].

use std::{fmt, time::Duration};

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use ed25519_dalek::{pkcs8::DecodePrivateKey, Signer as _};
use jsonwebtoken::{
    jwk::{Jwk, ThumbprintHash},
    Algorithm, DecodingKey,
};
use rand::RngCore;

/// The JOSE name of the algorithm (RFC 8037 §3.1), in JWS headers and JWKs.
pub const ALGORITHM: &str = "EdDSA";
/// Clock skew tolerated on a token's `exp`, `nbf` and `iat`, in seconds: a rule of
/// `token`'s validation, here because a retired key stays published until a token it
/// signed has expired with this leeway ([`KeySet`]). `token` uses these keys, not the
/// other way round.
pub const LEEWAY_SECS: u64 = 5;
/// DER of a PKCS#8 v1 `PrivateKeyInfo` for Ed25519 up to the 32-byte seed (RFC 8410 §7).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a PEM private key (expected `{PEM_BEGIN}` … `{PEM_END}`, as `openssl genpkey -algorithm ed25519` writes)")]
    NotPem,
    #[error("the PEM private key is not an Ed25519 key in PKCS#8 form")]
    NotEd25519,
}

/// One Ed25519 key pair: signs with the private half, verifies with the public one.
/// Never printed.
pub struct Ed25519Key {
    signing: ed25519_dalek::SigningKey,
    decoding: DecodingKey,
    kid: String,
    x: String,
    /// `base64url({"alg":"EdDSA","typ":"JWT","kid":…})`, the header of every token it signs.
    header_b64: String,
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Ed25519Key {
    /// A fresh key from the operating system's random generator.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self::from_signing_key(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as OpenSSL writes it.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let body = pem
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|rest| rest.strip_suffix(PEM_END))
            .ok_or(KeyError::NotPem)?;
        let base64: String = body.split_ascii_whitespace().collect();
        let der = STANDARD.decode(base64).map_err(|_| KeyError::NotPem)?;
        let signing =
            ed25519_dalek::SigningKey::from_pkcs8_der(&der).map_err(|_| KeyError::NotEd25519)?;
        Ok(Self::from_signing_key(signing))
    }

    fn from_signing_key(signing: ed25519_dalek::SigningKey) -> Self {
        let public = signing.verifying_key().to_bytes();
        let decoding = DecodingKey::from_ed_der(&public);
        let x = URL_SAFE_NO_PAD.encode(public);
        // A JWK is made of any 32-byte Ed25519 public key, and every JWK has a thumbprint:
        // this `expect` cannot fire.
        let kid = Jwk::from_decoding_key(&decoding, Some(Algorithm::EdDSA))
            .and_then(|jwk| jwk.thumbprint(ThumbprintHash::SHA256))
            .expect("a 32-byte Ed25519 public key has a JWK thumbprint");
        let header = format!(r#"{{"alg":"{ALGORITHM}","typ":"JWT","kid":"{kid}"}}"#);
        Self {
            header_b64: URL_SAFE_NO_PAD.encode(header),
            signing,
            decoding,
            kid,
            x,
        }
    }

    /// The PKCS#8 v1 PEM of the private key: what the database stores.
    pub fn to_pem(&self) -> String {
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(self.signing.as_bytes());
        format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", STANDARD.encode(der))
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint of the public JWK, base64url.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key, base64url: the JWK's `x` (RFC 8037 §2).
    pub fn public_x(&self) -> &str {
        &self.x
    }

    pub(super) fn header_b64(&self) -> &str {
        &self.header_b64
    }

    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The signature of `message`, base64url.
    pub(super) fn sign_b64(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.sign(message).to_bytes())
    }
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
    pub key: Ed25519Key,
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
    pub fn single(key: Ed25519Key) -> Self {
        Self::new(
            vec![ScheduledKey {
                generation: 1,
                key,
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
            kid: key.key.kid.clone(),
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
    pub fn signing(&self, now: u64) -> Option<&Ed25519Key> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.signs_from <= now)
            .or(self.keys.first())
            .map(|k| &k.key)
    }

    /// The keys published at `now`: next, active and retired ones.
    pub fn published(&self, now: u64) -> impl Iterator<Item = &Ed25519Key> {
        (0..self.keys.len())
            .filter(move |&i| self.status_at(i, now).state != KeyState::Expired)
            .map(|i| &self.keys[i].key)
    }

    /// The published key named `kid`, if any: the only keys a token may be signed with.
    pub fn verifying(&self, kid: &str, now: u64) -> Option<&Ed25519Key> {
        self.published(now).find(|k| k.kid == kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8410 §10.3's example private key, and its public key (§10.1).
    const RFC8410_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
";
    const RFC8410_PUBLIC_HEX: &str =
        "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1";

    #[test]
    fn rfc_8410_pem_reads_and_writes_back_identically() {
        let key = Ed25519Key::from_pem(RFC8410_PEM).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(key.public_x()).unwrap(),
            hex::decode(RFC8410_PUBLIC_HEX).unwrap()
        );
        assert_eq!(key.to_pem(), RFC8410_PEM);
        assert_eq!(key.kid().len(), 43, "base64url of a SHA-256");
    }

    #[test]
    fn kid_is_the_rfc_7638_thumbprint_of_rfc_8037s_example() {
        // RFC 8037 Appendix A.1 (the key) and A.3 (its thumbprint).
        let seed = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let key =
            Ed25519Key::from_signing_key(ed25519_dalek::SigningKey::try_from(&seed[..]).unwrap());
        assert_eq!(
            key.public_x(),
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_ne!(Ed25519Key::generate().kid(), key.kid());
    }

    #[test]
    fn other_pem_is_refused() {
        assert_eq!(
            Ed25519Key::from_pem("secret").unwrap_err(),
            KeyError::NotPem
        );
        // A PKCS#8 PEM holding something else (here: the prefix of an RSA key's DER).
        let other = format!(
            "{PEM_BEGIN}\n{}\n{PEM_END}",
            STANDARD.encode([0x30, 0x82, 0x01, 0x02, 0x02, 0x01, 0x00])
        );
        assert_eq!(
            Ed25519Key::from_pem(&other).unwrap_err(),
            KeyError::NotEd25519
        );
    }

    #[test]
    fn rotation_timeline_moves_next_active_retired_expired() {
        let lifetime = Duration::from_secs(100);
        let set = KeySet::new(
            vec![
                ScheduledKey {
                    generation: 1,
                    key: Ed25519Key::generate(),
                    created: 0,
                    signs_from: 0,
                },
                ScheduledKey {
                    generation: 2,
                    key: Ed25519Key::generate(),
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
