//! The tokens a mail carries in its link (email verification, password reset): 256
//! random bits, base64url, of which the server keeps only the SHA-256. A stolen database
//! then holds no usable link; and a token of 256 random bits needs no slow hash, while a
//! slow one on only the path that found an account would tell which addresses exist.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Longest token looked up (ours are 43 characters); anything longer is no token of ours.
pub const MAX_TOKEN_CHARS: usize = 128;

/// A new token and the hash to store for it.
pub fn new_email_token() -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = email_token_hash(&token);
    (token, hash)
}

/// What is stored for `token`: its SHA-256, hex.
pub fn email_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_and_only_their_hash_is_kept() {
        let (token, hash) = new_email_token();
        assert_eq!(token.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_eq!(hash, email_token_hash(&token));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token));
        assert_ne!(new_email_token().0, token);
    }
}
