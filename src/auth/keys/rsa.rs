//! RSA keys for `JWT_ALGORITHM=RS256` (RFC 7518 §3.3): 2048-bit keys from the operating
//! system's random generator, their PKCS#8 PEM, public JWK (`n`, `e`) and `kid`.
//!
//! The `rsa` crate is the one jsonwebtoken's `rust_crypto` backend verifies with. Its
//! private-key operation is not constant-time (RUSTSEC-2023-0071): gatehouse uses it only
//! to sign messages it composes itself, with blinding; docs/security.md says what that means.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use jsonwebtoken::{Algorithm, DecodingKey};
use rsa::{
    pkcs1::DecodeRsaPrivateKey,
    pkcs1v15,
    pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding},
    rand_core::OsRng,
    signature::{RandomizedSigner as _, SignatureEncoding as _},
    traits::PublicKeyParts as _,
    RsaPrivateKey,
};
use sha2::Sha256;

use super::{pem_der, thumbprint, token_header_b64, KeyAlgorithm, KeyError, PEM_BEGIN, PEM_END};

/// The size of a generated key, and the least a key file may have (RFC 7518 §3.3).
pub const RSA_BITS: usize = 2048;
const PKCS1_PEM_BEGIN: &str = "-----BEGIN RSA PRIVATE KEY-----";
const PKCS1_PEM_END: &str = "-----END RSA PRIVATE KEY-----";

/// One RSA key pair: signs RS256 (RSASSA-PKCS1-v1_5 with SHA-256) with the private half,
/// verifies with the public one. Never printed.
pub struct RsaKey {
    signing: pkcs1v15::SigningKey<Sha256>,
    decoding: DecodingKey,
    kid: String,
    n: String,
    e: String,
    /// `base64url({"alg":"RS256","typ":"JWT","kid":…})`, the header of every token it signs.
    header_b64: String,
}

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RsaKey {
    /// A fresh 2048-bit key from the operating system's random generator.
    pub fn generate() -> Self {
        // Fails only if the operating system has no randomness to give, which nothing
        // here could recover from (Ed25519's generation panics alike).
        let private = RsaPrivateKey::new(&mut OsRng, RSA_BITS)
            .expect("the operating system's random generator works");
        Self::from_private_key(private)
    }

    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm
    /// RSA` writes it) or a PKCS#1 one (`-----BEGIN RSA PRIVATE KEY-----`), of a key of at
    /// least 2048 bits.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let private = if let Some(der) = pem_der(pem, PEM_BEGIN, PEM_END) {
            RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| KeyError::NotRsa)?
        } else if let Some(der) = pem_der(pem, PKCS1_PEM_BEGIN, PKCS1_PEM_END) {
            RsaPrivateKey::from_pkcs1_der(&der).map_err(|_| KeyError::NotRsa)?
        } else {
            return Err(KeyError::NotPem);
        };
        let bits = private.n().bits();
        if bits < RSA_BITS {
            return Err(KeyError::RsaTooSmall { bits });
        }
        Ok(Self::from_private_key(private))
    }

    fn from_private_key(private: RsaPrivateKey) -> Self {
        let (n, e) = (private.n().to_bytes_be(), private.e().to_bytes_be());
        let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
        let kid = thumbprint(&decoding, Algorithm::RS256);
        Self {
            header_b64: token_header_b64(KeyAlgorithm::Rs256, &kid),
            n: URL_SAFE_NO_PAD.encode(n),
            e: URL_SAFE_NO_PAD.encode(e),
            signing: pkcs1v15::SigningKey::new(private),
            decoding,
            kid,
        }
    }

    /// The PKCS#8 PEM of the private key: what the database stores.
    pub fn to_pem(&self) -> String {
        // Encoding a valid key held in memory cannot fail.
        let pem = self
            .signing
            .as_ref()
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an RSA key encodes as PKCS#8");
        String::from(pem.as_str())
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint of the public JWK, base64url.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The modulus, base64url: the JWK's `n` (RFC 7518 §6.3.1.1).
    pub fn public_n(&self) -> &str {
        &self.n
    }

    /// The public exponent, base64url: the JWK's `e` (RFC 7518 §6.3.1.2).
    pub fn public_e(&self) -> &str {
        &self.e
    }

    pub(super) fn header_b64(&self) -> &str {
        &self.header_b64
    }

    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The RS256 signature of `message`, base64url. Blinded with fresh randomness, as
    /// jsonwebtoken signs, so the private-key operation never runs on a value an outsider
    /// chose.
    pub(super) fn sign_b64(&self, message: &[u8]) -> String {
        let signature = self.signing.sign_with_rng(&mut OsRng, message);
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::ThumbprintHash;
    use rsa::{pkcs1::EncodeRsaPrivateKey as _, BigUint};

    use super::*;

    /// One key for the tests of this module: generating takes a moment.
    fn key() -> &'static RsaKey {
        static KEY: std::sync::OnceLock<RsaKey> = std::sync::OnceLock::new();
        KEY.get_or_init(RsaKey::generate)
    }

    #[test]
    fn generated_keys_are_2048_bit_with_e_65537() {
        let key = key();
        let n = URL_SAFE_NO_PAD.decode(key.public_n()).unwrap();
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0, "no leading zero octet (RFC 7518 §6.3.1.1)");
        assert_eq!(key.public_e(), "AQAB");
        assert_eq!(key.kid().len(), 43, "base64url of a SHA-256");
    }

    #[test]
    fn pem_round_trips_as_pkcs8_and_pkcs1_is_read_too() {
        let key = key();
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let again = RsaKey::from_pem(&pem).unwrap();
        assert_eq!((again.kid(), again.to_pem()), (key.kid(), pem.clone()));
        let pkcs1 = key.signing.as_ref().to_pkcs1_pem(LineEnding::CRLF).unwrap();
        assert_eq!(RsaKey::from_pem(&pkcs1).unwrap().kid(), key.kid());
    }

    #[test]
    fn kid_is_the_rfc_7638_thumbprint() {
        // RFC 7638 §3.1's example key and its thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let decoding = DecodingKey::from_rsa_components(n, "AQAB").unwrap();
        assert_eq!(
            thumbprint(&decoding, Algorithm::RS256),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // And a generated key's kid is that of its published n and e.
        let key = key();
        let jwk = jsonwebtoken::jwk::Jwk::from_decoding_key(
            &DecodingKey::from_rsa_components(key.public_n(), key.public_e()).unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), key.kid());
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        let key = key();
        let message = b"header.payload";
        let signature = URL_SAFE_NO_PAD.decode(key.sign_b64(message)).unwrap();
        assert_eq!(signature.len(), 256);
        let public = DecodingKey::from_rsa_components(key.public_n(), key.public_e()).unwrap();
        let b64 = URL_SAFE_NO_PAD.encode(&signature);
        assert!(jsonwebtoken::crypto::verify(&b64, message, &public, Algorithm::RS256).unwrap());
        assert!(!jsonwebtoken::crypto::verify(&b64, b"other", &public, Algorithm::RS256).unwrap());
    }

    #[test]
    fn other_pem_small_keys_and_ed25519_keys_are_refused() {
        assert_eq!(RsaKey::from_pem("secret").unwrap_err(), KeyError::NotPem);
        let ed25519 = super::super::Ed25519Key::generate().to_pem();
        assert_eq!(RsaKey::from_pem(&ed25519).unwrap_err(), KeyError::NotRsa);
        // A 1024-bit key, made of two primes (RFC 7518 §3.3 asks for 2048 at least).
        let small = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(
            RsaKey::from_pem(&pem).unwrap_err(),
            KeyError::RsaTooSmall { bits: 1024 }
        );
        assert_eq!(small.e(), &BigUint::from(65_537u32));
    }
}
