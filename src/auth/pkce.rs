//! PKCE (RFC 7636) with the one method gatehouse accepts, S256: a `plain` challenge is
//! the verifier itself, sent through the browser, so it protects nothing (OAuth 2.1 §4.1.1
//! and the downgrade of kanidm#1097).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only `code_challenge_method` accepted.
pub const METHOD: &str = "S256";

/// Whether `value` has the form RFC 7636 §4.1 gives a verifier: 43 to 128 characters of
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `value` has the form of an S256 challenge: base64url (no padding) of 32 bytes.
pub fn is_s256_challenge(value: &str) -> bool {
    value.len() == 43 && URL_SAFE_NO_PAD.decode(value).is_ok_and(|b| b.len() == 32)
}

/// The S256 challenge of `verifier` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is a well-formed verifier whose S256 challenge is `challenge`.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    is_verifier(verifier)
        && bool::from(
            s256_challenge(verifier)
                .as_bytes()
                .ct_eq(challenge.as_bytes()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_example_verifies() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        assert!(is_s256_challenge(CHALLENGE));
        assert!(verify(VERIFIER, CHALLENGE));
    }

    #[test]
    fn other_verifiers_and_malformed_values_are_refused() {
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            CHALLENGE
        ));
        // `plain`: the challenge presented as its own verifier.
        assert!(!verify(CHALLENGE, CHALLENGE));
        assert!(!is_verifier("short"));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}+", "a".repeat(43))));
        assert!(!is_s256_challenge("not a challenge"));
        assert!(!is_s256_challenge(&"A".repeat(44)));
    }
}
