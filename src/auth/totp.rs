//! Time-based one-time passwords (RFC 6238, on RFC 4226's HOTP): the second factor.
//!
//! SHA-1, 6 digits, 30-second steps: what authenticator apps assume. Written here on the
//! `hmac` and `sha1` crates rather than taken from a TOTP crate, because replay protection
//! (RFC 6238 §5.2) needs to know *which* step a code matched, so that the step can be
//! stored and no code of it or of an earlier step is accepted again; the maintained crate
//! answers only "valid or not" (5.x) or the earliest matching step (6.x, which also needs
//! a newer compiler and a second RustCrypto stack). The tests hold RFC 6238 Appendix B's
//! and RFC 4226 Appendix D's vectors.

use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per step (RFC 6238 §4.1, X).
pub const PERIOD_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Steps accepted on either side of the current one: RFC 6238 §5.2 recommends one.
pub const SKEW_STEPS: u64 = 1;
/// Bytes of a new secret: 160 bits, as RFC 4226 §4 (R6) recommends.
pub const SECRET_BYTES: usize = 20;

/// RFC 4226 §5.3: `Truncate(HMAC-SHA-1(K, C)) mod 10^digits`.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC takes a key of any length: this `expect` cannot fire.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    // Dynamic truncation (§5.4): the low nibble of the last byte picks four bytes.
    let offset = usize::from(hash[19] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The step Unix time `unix_secs` falls in (RFC 6238 §4.2, T0 = 0).
pub fn step_at(unix_secs: u64) -> u64 {
    unix_secs / PERIOD_SECS
}

/// The code of `step`, zero-padded as apps show it.
pub fn code_at_step(secret: &[u8], step: u64) -> String {
    padded(hotp(secret, step, DIGITS as u32), DIGITS)
}

fn padded(code: u32, digits: usize) -> String {
    format!("{code:0digits$}")
}

/// Whether `code` looks like a TOTP code (six digits, spaces allowed as apps show them),
/// and if so its digits.
pub fn as_code(input: &str) -> Option<String> {
    let code: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// The step `code` is the code of, among the steps from one before `now_unix`'s to one
/// after, later than `last_used`: the latest such step, which the caller stores so that
/// neither this code nor any earlier one is accepted again (RFC 6238 §5.2). The latest,
/// because two steps of the window may share a code, and storing the earlier would let
/// the same digits pass twice. Every candidate is compared in constant time.
pub fn matching_step(
    secret: &[u8],
    code: &str,
    now_unix: u64,
    last_used: Option<u64>,
) -> Option<u64> {
    let code = as_code(code)?;
    let now = step_at(now_unix);
    let mut first = now.saturating_sub(SKEW_STEPS);
    if let Some(last) = last_used {
        first = first.max(last.saturating_add(1));
    }
    let mut matched = None;
    for step in first..=now.saturating_add(SKEW_STEPS) {
        if bool::from(code_at_step(secret, step).as_bytes().ct_eq(code.as_bytes())) {
            matched = Some(step);
        }
    }
    matched
}

/// A new secret of [`SECRET_BYTES`] random bytes.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
    secret
}

/// RFC 4648 base32, upper case, without padding: how the Key Uri Format writes a secret.
pub fn secret_base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The secret of its base32 form (as [`secret_base32`] writes it).
pub fn secret_from_base32(encoded: &str) -> Option<Vec<u8>> {
    data_encoding::BASE32_NOPAD.decode(encoded.as_bytes()).ok()
}

/// Everything but RFC 3986's unreserved characters is percent-encoded, from UTF-8: a space
/// is `%20` (never `+`), `:` is `%3A`.
const KEY_URI: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`
/// (the Key Uri Format authenticator apps read). The label's separator is a literal `:`;
/// one inside the issuer or the account is encoded.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = utf8_percent_encode(issuer, KEY_URI);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECS}",
        utf8_percent_encode(account, KEY_URI),
        secret_base32(secret),
    )
}

/// `uri` as a QR code in a self-contained SVG (no external reference, no script), for
/// people who scan rather than type.
pub fn qr_svg(uri: &str) -> Result<String, qrcode::types::QrError> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows: Unix time, T, TOTP (8 digits).
    const RFC_6238_SHA1: [(u64, u64, &str); 6] = [
        (59, 0x1, "94287082"),
        (1_111_111_109, 0x23523EC, "07081804"),
        (1_111_111_111, 0x23523ED, "14050471"),
        (1_234_567_890, 0x273EF07, "89005924"),
        (2_000_000_000, 0x3F940AA, "69279037"),
        (20_000_000_000, 0x27BC86AA, "65353130"),
    ];
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors_are_reproduced() {
        for (time, step, code) in RFC_6238_SHA1 {
            assert_eq!(step_at(time), step, "T at {time}");
            assert_eq!(padded(hotp(RFC_SECRET, step, 8), 8), code, "TOTP at {time}");
        }
    }

    #[test]
    fn rfc_4226_appendix_d_hotp_vectors_are_reproduced() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in (0..).zip(expected) {
            assert_eq!(hotp(RFC_SECRET, counter, 6), code, "counter {counter}");
        }
        // Six digits keep their leading zero: compared as text, never as numbers.
        assert_eq!(code_at_step(RFC_SECRET, step_at(1_111_111_111)), "050471");
        assert_eq!(
            matching_step(RFC_SECRET, "50471", 1_111_111_111, None),
            None
        );
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_not_two() {
        let now = 1_111_111_111;
        let t = step_at(now);
        for (step, accepted) in [
            (t - 2, false),
            (t - 1, true),
            (t, true),
            (t + 1, true),
            (t + 2, false),
        ] {
            let code = code_at_step(RFC_SECRET, step);
            assert_eq!(
                matching_step(RFC_SECRET, &code, now, None).is_some(),
                accepted,
                "step {step}"
            );
        }
    }

    #[test]
    fn no_code_of_the_last_used_step_or_an_earlier_one_is_accepted() {
        let now = 1_111_111_111;
        let t = step_at(now);
        let code = |step| code_at_step(RFC_SECRET, step);
        assert_eq!(matching_step(RFC_SECRET, &code(t), now, None), Some(t));
        assert_eq!(
            matching_step(RFC_SECRET, &code(t), now, Some(t)),
            None,
            "replayed"
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code(t - 1), now, Some(t)),
            None,
            "older"
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code(t + 1), now, Some(t)),
            Some(t + 1)
        );
        let spaced = format!("{} {}", &code(t)[..3], &code(t)[3..]);
        assert_eq!(matching_step(RFC_SECRET, &spaced, now, None), Some(t));
        for junk in ["", "12345", "12345a", "1234567", "１２３４５６"] {
            assert_eq!(matching_step(RFC_SECRET, junk, now, None), None, "{junk:?}");
        }
    }

    #[test]
    fn secrets_are_160_random_bits_in_unpadded_base32() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        let encoded = secret_base32(&a);
        assert_eq!(encoded.len(), 32);
        assert!(!encoded.contains('='));
        assert_eq!(secret_from_base32(&encoded), Some(a));
        assert_eq!(secret_from_base32("not base32!"), None);
    }

    #[test]
    fn the_otpauth_uri_encodes_issuer_and_account_as_authenticator_apps_expect() {
        assert_eq!(
            otpauth_uri("Gate house", "jo hn:doe@é", b"Hello!\xde\xad\xbe\xef"),
            "otpauth://totp/Gate%20house:jo%20hn%3Adoe%40%C3%A9?secret=JBSWY3DPEHPK3PXP\
             &issuer=Gate%20house&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn the_qr_code_is_a_self_contained_svg() {
        let svg = qr_svg(&otpauth_uri("gatehouse", "johndoe", &new_secret())).unwrap();
        assert!(svg.starts_with("<?xml") && svg.ends_with("</svg>"), "{svg}");
        for external in ["href", "<script", "<image", "url("] {
            assert!(!svg.contains(external), "{external}");
        }
    }
}
