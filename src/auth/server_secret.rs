//! The server secret (`SECRET_KEY`, `SECRET_KEY_FILE`, else generated): the key of HS256
//! tokens and the root of the keys derived from it (refresh tokens'), under either
//! algorithm. Not the Ed25519 signing keys of EdDSA: those are in [`super::keys`].

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

/// The key published in the FastAPI tutorial: anyone can forge tokens signed with it.
const TUTORIAL_SECRET_KEY: &str =
    "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7";
/// HS256 wants at least as many key bytes as the hash output (RFC 7518 §3.2).
pub const MIN_SECRET_KEY_BYTES: usize = 32;

/// The server secret: HS256's key, and the root of the keys derived for other uses
/// ([`ServerSecret::derive`]). Never printed.
pub struct ServerSecret(SecretBox<[u8]>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerSecretError {
    #[error("SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes, got {0}")]
    TooShort(usize),
    #[error("SECRET_KEY is the key published in the FastAPI tutorial; generate your own (e.g. `openssl rand -hex 32`)")]
    Published,
    #[error("SECRET_KEY starts or ends with whitespace; remove it (only a trailing newline of a --secret-key-file is ignored)")]
    SurroundingWhitespace,
    #[error(
        "SECRET_KEY is wrapped in quotes, as Docker's --env-file leaves them; remove the quotes"
    )]
    Quoted,
}

impl ServerSecret {
    /// Accepts a configured key: at least 32 bytes, not the tutorial's published key in
    /// any spelling, and without surrounding whitespace or quotes. Those are refused, not
    /// trimmed: a key that means two different things to two replicas (one trims, one
    /// does not) would sign tokens the other refuses.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ServerSecretError> {
        if is_published(&bytes) {
            return Err(ServerSecretError::Published);
        }
        // Only text keys: 32 random bytes from a file may well begin with a space byte.
        if std::str::from_utf8(&bytes).is_ok() {
            if bytes.trim_ascii().len() != bytes.len() {
                return Err(ServerSecretError::SurroundingWhitespace);
            }
            if unquoted(&bytes).len() != bytes.len() {
                return Err(ServerSecretError::Quoted);
            }
        }
        if bytes.len() < MIN_SECRET_KEY_BYTES {
            return Err(ServerSecretError::TooShort(bytes.len()));
        }
        Ok(Self(SecretBox::new(bytes.into_boxed_slice())))
    }

    /// A key of its own for `purpose`, derived from this one (HMAC-SHA256), so one
    /// configured secret can serve several uses without one use exposing another.
    pub fn derive(&self, purpose: &str) -> SecretBox<[u8]> {
        SecretBox::new(hmac_sha256(self.0.expose_secret(), &[purpose.as_bytes()]).into())
    }

    /// The secret's bytes, for HS256.
    pub(super) fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// A fresh random 256-bit key, hex encoded (the form stored in the database).
    pub fn generate_hex() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }
}

/// Whether `key` is the tutorial's key: its hex in any case, its raw bytes, or either
/// with whitespace or quotes around it.
fn is_published(key: &[u8]) -> bool {
    let mut core = key.trim_ascii();
    while unquoted(core).len() != core.len() {
        core = unquoted(core).trim_ascii();
    }
    let raw = hex::decode(TUTORIAL_SECRET_KEY).unwrap_or_default();
    core.eq_ignore_ascii_case(TUTORIAL_SECRET_KEY.as_bytes()) || core == raw || key == raw
}

/// `key` without one pair of matching `"` or `'` around it.
fn unquoted(key: &[u8]) -> &[u8] {
    match key {
        [b'"', inner @ .., b'"'] | [b'\'', inner @ .., b'\''] => inner,
        _ => key,
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret([REDACTED])")
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length: this `expect` cannot fire.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_and_short_keys_are_refused() {
        assert_eq!(
            ServerSecret::new(TUTORIAL_SECRET_KEY.as_bytes().to_vec()).unwrap_err(),
            ServerSecretError::Published
        );
        assert_eq!(
            ServerSecret::new(vec![1; 31]).unwrap_err(),
            ServerSecretError::TooShort(31)
        );
        assert!(ServerSecret::new(vec![1; 32]).is_ok());
        assert_eq!(ServerSecret::generate_hex().len(), 64);
    }

    #[test]
    fn tutorial_key_is_refused_in_every_spelling() {
        let upper = TUTORIAL_SECRET_KEY.to_ascii_uppercase();
        let raw = hex::decode(TUTORIAL_SECRET_KEY).unwrap();
        let mut raw_upper_hex_quoted = b"'".to_vec();
        raw_upper_hex_quoted.extend(upper.as_bytes());
        raw_upper_hex_quoted.extend(b"'");
        for variant in [
            upper.clone().into_bytes(),
            format!("\"{TUTORIAL_SECRET_KEY}\"").into_bytes(),
            format!("'{TUTORIAL_SECRET_KEY}'").into_bytes(),
            format!("{TUTORIAL_SECRET_KEY}\n").into_bytes(),
            format!(" {TUTORIAL_SECRET_KEY}").into_bytes(),
            format!("{TUTORIAL_SECRET_KEY} ").into_bytes(),
            format!(" \"{upper}\"\r\n").into_bytes(),
            raw_upper_hex_quoted,
            raw,
        ] {
            assert_eq!(
                ServerSecret::new(variant.clone()).unwrap_err(),
                ServerSecretError::Published,
                "{}",
                String::from_utf8_lossy(&variant)
            );
        }
    }

    #[test]
    fn keys_with_surrounding_whitespace_or_quotes_are_refused() {
        let key = "k".repeat(40);
        for (variant, error) in [
            (format!(" {key}"), ServerSecretError::SurroundingWhitespace),
            (format!("{key}\n"), ServerSecretError::SurroundingWhitespace),
            (format!("\t{key}"), ServerSecretError::SurroundingWhitespace),
            (format!("\"{key}\""), ServerSecretError::Quoted),
            (format!("'{key}'"), ServerSecretError::Quoted),
        ] {
            assert_eq!(ServerSecret::new(variant.into_bytes()).unwrap_err(), error);
        }
        // Quotes or spaces inside a key, and a binary key that starts with a space byte,
        // are fine.
        assert!(ServerSecret::new(format!("\"{key} {key}").into_bytes()).is_ok());
        let mut binary = vec![b' '];
        binary.extend([0xff; 31]);
        assert!(ServerSecret::new(binary).is_ok());
    }

    #[test]
    fn key_is_not_printed_by_debug() {
        let key = ServerSecret::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
        assert_eq!(format!("{key:?}"), "ServerSecret([REDACTED])");
    }
}
