//! Session ids and refresh tokens (RFC 6749 §6): opaque, 256 bits, kept only as hashes.
//!
//! A refresh token is HMAC-SHA256(key, session id, rotation count) under a key derived
//! from the signing key. Derived rather than random so that, within the reuse interval,
//! the session's current token can be answered again to a client whose concurrent
//! refresh lost the race, while the database still holds nothing but its SHA-256 hash.
//! Without the signing key no token can be computed, and with it access tokens could be
//! forged anyway, so deriving costs nothing in secrecy.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};

use super::token::{hmac_sha256, SigningKey};

/// What the refresh-token key is derived for, from the signing key.
const PURPOSE: &str = "gatehouse refresh token v1";

/// The key refresh tokens are derived with. Never printed.
pub struct RefreshTokenKey(SecretBox<[u8]>);

impl fmt::Debug for RefreshTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshTokenKey([REDACTED])")
    }
}

impl RefreshTokenKey {
    pub fn new(signing_key: &SigningKey) -> Self {
        Self(signing_key.derive(PURPOSE))
    }

    /// The refresh token of session `session_id` after `generation` rotations.
    pub fn token(&self, session_id: &str, generation: i64) -> String {
        let mac = hmac_sha256(
            self.0.expose_secret(),
            &[
                session_id.as_bytes(),
                b"\0",
                generation.to_be_bytes().as_slice(),
            ],
        );
        URL_SAFE_NO_PAD.encode(mac)
    }
}

/// How a refresh token is stored: SHA-256, hex. A plain hash is enough: the token has 256
/// bits of entropy, so there is nothing to guess.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new session id: 128 random bits, base64url (22 characters).
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> RefreshTokenKey {
        RefreshTokenKey::new(&SigningKey::new(vec![byte; 32]).unwrap())
    }

    #[test]
    fn tokens_carry_256_bits_and_differ_by_session_generation_and_key() {
        let token = key(1).token("sid", 0);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_eq!(token, key(1).token("sid", 0));
        assert_ne!(token, key(1).token("sid", 1));
        assert_ne!(token, key(1).token("sie", 0));
        assert_ne!(token, key(2).token("sid", 0));
        assert_eq!(hash_refresh_token(&token).len(), 64);
    }

    #[test]
    fn session_ids_are_128_random_bits() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
    }

    #[test]
    fn key_is_not_printed_by_debug() {
        assert_eq!(format!("{:?}", key(1)), "RefreshTokenKey([REDACTED])");
    }
}
