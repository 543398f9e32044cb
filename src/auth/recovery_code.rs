//! Recovery codes: the way back in when the authenticator app is lost.
//!
//! Ten symbols of Crockford's base32 (50 random bits), shown `xxxxx-xxxxx`; typed back in
//! any case, with or without the dash and spaces, `i`/`l` read as `1` and `o` as `0`.
//!
//! Stored as HMAC-SHA256 under a key derived from the server secret, not argon2: fifty
//! random bits behind the failed-login limit cannot be guessed online, and whoever can
//! read the database has the TOTP secret beside them anyway, so a slow hash would buy
//! nothing while turning each `otp` attempt into ten argon2 runs. A keyed hash also keeps
//! a database-only leak from confirming guesses when the secret lives outside it
//! (`SECRET_KEY`). Changing that secret invalidates every recovery code, as it does every
//! refresh token.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};

use super::server_secret::{hmac_sha256, ServerSecret};

/// Codes in a set.
pub const CODES_PER_SET: usize = 10;
/// Symbols of a code: 10 × 5 bits.
const SYMBOLS: usize = 10;
/// Crockford's base32 alphabet: no `i`, `l`, `o` or `u` to misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// What the key is derived for, from the server secret.
const PURPOSE: &str = "gatehouse recovery code v1";

/// A new code, `xxxxx-xxxxx`. Each symbol is a random byte's low five bits, uniform
/// because 32 divides 256.
pub fn new_code() -> String {
    let mut bytes = [0u8; SYMBOLS];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let symbols: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    format!("{}-{}", &symbols[..5], &symbols[5..])
}

/// The ten symbols of what a person typed, or `None` if it cannot be a code.
pub fn normalize(input: &str) -> Option<String> {
    let mut symbols = String::with_capacity(SYMBOLS);
    for c in input.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
        let c = match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        };
        if symbols.len() == SYMBOLS || !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        symbols.push(c);
    }
    (symbols.len() == SYMBOLS).then_some(symbols)
}

/// The key recovery codes are stored under. Never printed.
pub struct RecoveryCodeKey(SecretBox<[u8]>);

impl fmt::Debug for RecoveryCodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCodeKey([REDACTED])")
    }
}

impl RecoveryCodeKey {
    pub fn new(secret: &ServerSecret) -> Self {
        Self(secret.derive(PURPOSE))
    }

    /// How user `user_id`'s code `normalized` (see [`normalize`]) is stored: hex.
    pub fn hash(&self, user_id: i32, normalized: &str) -> String {
        hex::encode(hmac_sha256(
            self.0.expose_secret(),
            &[&user_id.to_be_bytes(), normalized.as_bytes()],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_50_bits_and_read_back_however_they_are_typed() {
        let codes: Vec<String> = (0..1000).map(|_| new_code()).collect();
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
        for code in &codes {
            assert_eq!(code.len(), 11);
            let symbols = normalize(code).unwrap();
            assert_eq!(normalize(&code.to_uppercase()).as_ref(), Some(&symbols));
            let spaced = format!(" {} {} ", &code[..5], &code[6..]);
            assert_eq!(normalize(&spaced), Some(symbols));
        }
        assert_eq!(normalize("O1IL0-abcde").as_deref(), Some("01110abcde"));
        for refused in [
            "",
            "abcde-abcd",
            "abcde-abcdef",
            "abcde-abcdu",
            "abcdé-abcde",
            "123456",
        ] {
            assert_eq!(normalize(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn hashes_differ_by_user_code_and_key_and_the_key_is_not_printed() {
        let key = |byte| RecoveryCodeKey::new(&ServerSecret::new(vec![byte; 32]).unwrap());
        let hash = key(1).hash(7, "0123456789");
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, key(1).hash(7, "0123456789"));
        assert_ne!(hash, key(1).hash(8, "0123456789"));
        assert_ne!(hash, key(1).hash(7, "0123456788"));
        assert_ne!(hash, key(2).hash(7, "0123456789"));
        assert_eq!(format!("{:?}", key(1)), "RecoveryCodeKey([REDACTED])");
    }
}
