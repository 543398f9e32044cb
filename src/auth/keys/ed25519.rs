//! Ed25519 keys for `JWT_ALGORITHM=EdDSA` (RFC 8037): generating one, reading and writing
//! its PKCS#8 PEM, its public JWK (`x`) and `kid`.

use std::fmt;

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use ed25519_dalek::{pkcs8::DecodePrivateKey, Signer as _};
use jsonwebtoken::{Algorithm, DecodingKey};
use rand::RngCore;

use super::{pem_der, thumbprint, token_header_b64, KeyAlgorithm, KeyError, PEM_BEGIN, PEM_END};

/// DER of a PKCS#8 v1 `PrivateKeyInfo` for Ed25519 up to the 32-byte seed (RFC 8410 §7).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

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
        let der = pem_der(pem, PEM_BEGIN, PEM_END).ok_or(KeyError::NotPem)?;
        let signing =
            ed25519_dalek::SigningKey::from_pkcs8_der(&der).map_err(|_| KeyError::NotEd25519)?;
        Ok(Self::from_signing_key(signing))
    }

    fn from_signing_key(signing: ed25519_dalek::SigningKey) -> Self {
        let public = signing.verifying_key().to_bytes();
        let decoding = DecodingKey::from_ed_der(&public);
        let kid = thumbprint(&decoding, Algorithm::EdDSA);
        Self {
            header_b64: token_header_b64(KeyAlgorithm::EdDsa, &kid),
            x: URL_SAFE_NO_PAD.encode(public),
            signing,
            decoding,
            kid,
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
}
