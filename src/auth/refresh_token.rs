//! Session ids and refresh tokens (RFC 6749 §6): opaque to clients, unforgeable, and
//! nothing the server must store per token.
//!
//! A refresh token is `base64url(session id ‖ generation ‖ MAC)`: the session it belongs
//! to, how many rotations the session had when it was issued, and HMAC-SHA256 of both
//! under a key derived from the server secret. The server keeps only each session's
//! current generation, so storage per session stays constant however often it is
//! refreshed, while every earlier token of a live session is still recognised as spent:
//! its generation is below the session's. Without the key no token can be made, and with
//! it access tokens could be forged anyway, so the MAC costs nothing in secrecy.
//!
//! Derived rather than random, too, so that within the reuse interval a client whose
//! concurrent refresh lost the race can be answered the session's current token.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::server_secret::{hmac_sha256, ServerSecret};

/// What the refresh-token key is derived for, from the server secret. (v1 keyed the
/// tokens that were stored as hashes; see `db::legacy_refresh_token`.)
const PURPOSE: &str = "gatehouse refresh token v2";

/// Length of a session id: 128 random bits, base64url.
const SESSION_ID_LEN: usize = 22;
const GENERATION_LEN: usize = 8;
const MAC_LEN: usize = 32;
const TOKEN_BYTES: usize = SESSION_ID_LEN + GENERATION_LEN + MAC_LEN;
/// Its length in base64url without padding.
const TOKEN_CHARS: usize = (TOKEN_BYTES * 4).div_ceil(3);

/// The key refresh tokens are made and checked with. Never printed.
pub struct RefreshTokenKey(SecretBox<[u8]>);

impl fmt::Debug for RefreshTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshTokenKey([REDACTED])")
    }
}

/// What a valid refresh token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenClaims {
    pub session_id: String,
    /// The session's rotation count when the token was issued.
    pub generation: i64,
}

impl RefreshTokenKey {
    pub fn new(secret: &ServerSecret) -> Self {
        Self(secret.derive(PURPOSE))
    }

    fn mac(&self, session_id: &[u8], generation: &[u8]) -> [u8; MAC_LEN] {
        hmac_sha256(self.0.expose_secret(), &[session_id, generation])
    }

    /// The refresh token of session `session_id` (as [`new_session_id`] makes them) after
    /// `generation` rotations.
    pub fn token(&self, session_id: &str, generation: i64) -> String {
        let generation = generation.to_be_bytes();
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.extend_from_slice(session_id.as_bytes());
        bytes.extend_from_slice(&generation);
        bytes.extend_from_slice(&self.mac(session_id.as_bytes(), &generation));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// What `token` names, if this key made it; `None` for anything else, including the
    /// hashed tokens issued before (see `db::legacy_refresh_token`).
    pub fn open(&self, token: &str) -> Option<RefreshTokenClaims> {
        if token.len() != TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != TOKEN_BYTES {
            return None;
        }
        let (session_id, rest) = bytes.split_at(SESSION_ID_LEN);
        let (generation, mac) = rest.split_at(GENERATION_LEN);
        if !bool::from(self.mac(session_id, generation).ct_eq(mac)) {
            return None;
        }
        Some(RefreshTokenClaims {
            session_id: String::from_utf8(session_id.to_vec()).ok()?,
            generation: i64::from_be_bytes(generation.try_into().ok()?),
        })
    }
}

/// How a refresh token issued before tokens carried their session was stored: SHA-256,
/// hex. A plain hash is enough: those tokens have 256 bits of entropy.
pub fn hash_legacy_refresh_token(token: &str) -> String {
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
        RefreshTokenKey::new(&ServerSecret::new(vec![byte; 32]).unwrap())
    }

    #[test]
    fn a_token_names_its_session_and_generation_under_a_256_bit_mac() {
        let sid = new_session_id();
        let token = key(1).token(&sid, 7);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), TOKEN_BYTES);
        assert_eq!(token, key(1).token(&sid, 7), "derived, not random");
        assert_eq!(
            key(1).open(&token),
            Some(RefreshTokenClaims {
                session_id: sid.clone(),
                generation: 7
            })
        );
        assert_ne!(token, key(1).token(&sid, 8));
        assert_eq!(key(2).open(&token), None, "another key's token");
    }

    #[test]
    fn a_token_changed_anywhere_is_refused() {
        let sid = new_session_id();
        let token = key(1).token(&sid, 0);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert_eq!(
                key(1).open(&URL_SAFE_NO_PAD.encode(&bytes)),
                None,
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        for refused in ["", "x", &token[1..], &format!("{token}A"), &"A".repeat(43)] {
            assert_eq!(key(1).open(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn session_ids_are_128_random_bits() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_eq!(a.len(), SESSION_ID_LEN);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn key_is_not_printed_by_debug() {
        assert_eq!(format!("{:?}", key(1)), "RefreshTokenKey([REDACTED])");
    }
}
