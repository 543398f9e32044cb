//! What a new password must be (NIST SP 800-63B §5.1.1.2): long enough, not so long that
//! hashing it is a denial-of-service lever, and not one of the passwords attackers try
//! first. Nothing else: no composition rules, which the same guidance advises against.
//!
//! The common passwords are Django's list (`common_passwords.txt`, unchanged from
//! `django/contrib/auth/common-passwords.txt.gz` of Django 5.2.19; BSD-3-Clause, see
//! `common_passwords.LICENSE`): 19,640 passwords, lowercased and deduplicated, from
//! Royce Williams' list of the 20,000 most common ones. A password is compared as Django
//! compares it: trimmed and lowercased.

use std::{collections::HashSet, sync::LazyLock};

/// Default of `PASSWORD_MIN_LENGTH`, in characters (NIST's minimum).
pub const DEFAULT_MIN_LENGTH: usize = 8;
/// Longest password accepted, in bytes: argon2 of more is only a denial-of-service lever.
pub const MAX_BYTES: usize = 1024;

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

/// Why a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("the password must be at least {min} characters")]
    TooShort { min: usize },
    #[error("the password must be at most {max} bytes")]
    TooLong { max: usize },
    #[error("this password is too common: it is among the first an attacker tries")]
    Common,
}

/// The rules a new password is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode code points, as NIST counts them).
    pub min_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: DEFAULT_MIN_LENGTH,
        }
    }
}

impl PasswordPolicy {
    /// Whether `password` may be set; the length is checked before the list.
    pub fn check(&self, password: &str) -> Result<(), PolicyViolation> {
        if password.len() > MAX_BYTES {
            return Err(PolicyViolation::TooLong { max: MAX_BYTES });
        }
        if password.chars().count() < self.min_length.max(1) {
            return Err(PolicyViolation::TooShort {
                min: self.min_length.max(1),
            });
        }
        if is_common(password) {
            return Err(PolicyViolation::Common);
        }
        Ok(())
    }
}

/// Whether `password`, trimmed and lowercased, is on the list.
pub fn is_common(password: &str) -> bool {
    COMMON.contains(password.trim().to_lowercase().as_str())
}

/// Builds the list now rather than in the first request that sets a password (tens of
/// milliseconds in a debug build).
pub fn load_common_passwords() {
    LazyLock::force(&COMMON);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_djangos_whole_list() {
        assert_eq!(COMMON.len(), 19_640);
        assert!(COMMON.contains("123456"));
        assert!(COMMON.contains("password"));
    }

    #[test]
    fn common_passwords_are_found_in_any_case_and_with_surrounding_spaces() {
        for common in ["password", "Password1", "  QWERTY123 ", "iloveyou"] {
            assert!(is_common(common), "{common:?}");
        }
        assert!(!is_common("correct horse battery staple"));
    }

    #[test]
    fn length_counts_characters_and_is_checked_before_the_list() {
        let policy = PasswordPolicy { min_length: 8 };
        assert_eq!(
            policy.check("abc"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        // Eight characters, sixteen bytes.
        assert_eq!(policy.check("ééééééé1"), Ok(()));
        assert_eq!(policy.check("password"), Err(PolicyViolation::Common));
        assert_eq!(
            policy.check(&"a".repeat(MAX_BYTES + 1)),
            Err(PolicyViolation::TooLong { max: MAX_BYTES })
        );
        assert_eq!(policy.check(&"é".repeat(MAX_BYTES / 2)), Ok(()));
        assert_eq!(
            PasswordPolicy { min_length: 0 }.check(""),
            Err(PolicyViolation::TooShort { min: 1 })
        );
    }
}
