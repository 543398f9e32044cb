//! OAuth client credentials: the `client_id` (128 random bits) and a confidential client's
//! secret (256 random bits), both base64url without padding.
//!
//! The secret is shown once and stored only as its SHA-256. A fast hash is right here,
//! unlike for passwords: 256 random bits cannot be guessed offline however fast the hash,
//! so argon2 would only add work to every token request (and a way to load the hashing
//! pool with bad secrets).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in a client id.
const CLIENT_ID_BYTES: usize = 16;
/// Random bytes in a client secret.
const SECRET_BYTES: usize = 32;

/// A new client id: 22 characters.
pub fn new_client_id() -> String {
    URL_SAFE_NO_PAD.encode(random::<CLIENT_ID_BYTES>())
}

/// A new client secret (43 characters) and the hash to store for it.
pub fn new_client_secret() -> (SecretString, String) {
    let secret = URL_SAFE_NO_PAD.encode(random::<SECRET_BYTES>());
    let hash = client_secret_hash(&secret);
    (SecretString::from(secret), hash)
}

/// What is stored for `secret`: its SHA-256, hex.
pub fn client_secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored`. The hashes are compared in constant time, so the
/// time taken tells nothing of how much of the stored hash a guess matched.
pub fn client_secret_matches(secret: &SecretString, stored: &str) -> bool {
    let hash = client_secret_hash(secret.expose_secret());
    bool::from(hash.as_bytes().ct_eq(stored.as_bytes()))
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_random_bits_and_secrets_256_of_which_only_the_hash_is_kept() {
        let id = new_client_id();
        assert_eq!(URL_SAFE_NO_PAD.decode(&id).unwrap().len(), 16);
        assert_eq!(id.len(), 22);
        assert_ne!(new_client_id(), id);

        let (secret, hash) = new_client_secret();
        assert_eq!(secret.expose_secret().len(), 43);
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(secret.expose_secret())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(hash, client_secret_hash(secret.expose_secret()));
        assert_eq!(hash.len(), 64);
        assert!(client_secret_matches(&secret, &hash));
        assert!(!client_secret_matches(
            &SecretString::from("not the secret"),
            &hash
        ));
        assert_ne!(new_client_secret().1, hash);
    }
}
