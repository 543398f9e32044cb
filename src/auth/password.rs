//! Password hashing (argon2id) and verification (argon2 of any parameters, bcrypt). Every
//! function here blocks for tens of milliseconds: the server calls them through the
//! hashing pool ([`super::hashing_pool`]), never on the async runtime.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use subtle::ConstantTimeEq;

/// The tutorial's pwdlib parameters: argon2id, 64 MiB, 3 passes, 4 lanes.
const M_COST_KIB: u32 = 65_536;
const T_COST: u32 = 3;
const P_COST: u32 = 4;
const OUTPUT_LEN: usize = 32;

/// A valid argon2id hash of a random password nobody knows, with the current parameters.
/// Unknown usernames are verified against it so that they cost as much as a wrong password.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$5OAgY2VdQNWNC8RnFziU5A$tX04O86OzWbxHC64iPyMxSBbhfqo9KAy2PZzEt5XhMc";

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password, or a stored hash in a format we cannot read.
    Mismatch,
    /// Correct password; `rehash` holds a current hash when the stored one is outdated
    /// (bcrypt, or argon2 with other parameters).
    Match { rehash: Option<String> },
}

/// Argon2 working memory (64 MiB with the current parameters) that a hashing thread keeps
/// while more logins are queued, so back-to-back verifies under load do not each map,
/// fault in and zero it afresh: that was a third of a verify's CPU time (bench/RESULTS.md).
/// The thread frees it whenever the queue is empty, so an idle server holds none.
#[derive(Default)]
pub struct Scratch(Vec<Block>);

impl Scratch {
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0 = vec![Block::default(); count];
        }
        &mut self.0[..count]
    }

    /// Frees the memory: an idle thread holds none.
    pub(super) fn release(&mut self) {
        self.0 = Vec::new();
    }
}

fn current_argon2() -> Argon2<'static> {
    // Constant, valid argon2 parameters: this `expect` cannot fire.
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new argon2id PHC string for `password`. Blocking: call it through
/// [`super::hashing_pool::PasswordHasher`].
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    current_argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

/// Checks `password` against a stored argon2 or bcrypt hash. Blocking.
pub fn verify_password(password: &str, stored: &str) -> Verification {
    verify_password_with(&mut Scratch::default(), password, stored)
}

/// [`verify_password`] with argon2 working memory that outlives the call. Blocking.
pub fn verify_password_with(scratch: &mut Scratch, password: &str, stored: &str) -> Verification {
    let (matched, current) = if is_bcrypt(stored) {
        (bcrypt::verify(password, stored).unwrap_or(false), false)
    } else {
        match PasswordHash::new(stored) {
            Ok(hash) => (
                argon2_matches(scratch, password.as_bytes(), &hash),
                is_current(&hash),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "stored password hash is not in a known format");
                (false, false)
            }
        }
    };
    match (matched, current) {
        (false, _) => Verification::Mismatch,
        (true, true) => Verification::Match { rehash: None },
        (true, false) => Verification::Match {
            rehash: hash_password(password).ok(),
        },
    }
}

/// What argon2's own `verify_password` does, with the hash's own algorithm, version,
/// parameters and salt, but in `scratch`'s memory; the comparison is constant-time.
fn argon2_matches(scratch: &mut Scratch, password: &[u8], hash: &PasswordHash<'_>) -> bool {
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(hash.algorithm),
        Params::try_from(hash),
        hash.salt,
        hash.hash,
    ) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = scratch.blocks(params.block_count());
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, blocks)
        .is_ok()
        && bool::from(out.ct_eq(expected))
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

/// Whether `hash` is argon2id v19 with exactly the current parameters.
fn is_current(hash: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm == Algorithm::Argon2id.ident()
        && hash.version == Some(Version::V0x13.into())
        && params.m_cost() == M_COST_KIB
        && params.t_cost() == T_COST
        && params.p_cost() == P_COST
        && hash.hash.is_some_and(|h| h.len() == OUTPUT_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TUTORIAL_HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc";

    #[test]
    fn tutorial_seed_hash_verifies_secret_and_needs_no_rehash() {
        assert_eq!(
            verify_password("secret", TUTORIAL_HASH),
            Verification::Match { rehash: None }
        );
        assert_eq!(
            verify_password("Secret", TUTORIAL_HASH),
            Verification::Mismatch
        );
    }

    #[test]
    fn new_hashes_are_current_argon2id() {
        let hash = hash_password("pw").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"),
            "{hash}"
        );
        assert!(is_current(&PasswordHash::new(&hash).unwrap()));
        assert!(is_current(&PasswordHash::new(DUMMY_HASH).unwrap()));
    }

    #[test]
    fn bcrypt_and_weaker_argon2_verify_and_ask_for_rehash() {
        let bcrypt = "$2b$04$Vf0sk9DYpJSvGFPbYJFvUepGgKAXN7fxNFOr9vIm3g.6z6xdLA5Qy";
        let Verification::Match { rehash: Some(new) } = verify_password("legacy-pass", bcrypt)
        else {
            panic!("bcrypt hash did not verify");
        };
        assert!(is_current(&PasswordHash::new(&new).unwrap()));
        assert_eq!(verify_password("nope", bcrypt), Verification::Mismatch);

        let weak = "$argon2id$v=19$m=19456,t=2,p=1$CW+CpFWFO1+meCaQe66xgA$3uXlrP6Lf9gRp4jJpC6AwYHn5/iJlk6rc7EfhnMovow";
        assert!(matches!(
            verify_password("older-pass", weak),
            Verification::Match { rehash: Some(_) }
        ));
    }

    #[test]
    fn unreadable_hash_is_a_mismatch_not_a_panic() {
        assert_eq!(verify_password("x", ""), Verification::Mismatch);
        assert_eq!(verify_password("x", "plaintext"), Verification::Mismatch);
        assert_eq!(
            verify_password("x", "$2b$99$garbage"),
            Verification::Mismatch
        );
    }

    #[test]
    fn reused_memory_gives_the_same_answers_as_fresh_memory() {
        let weak = "$argon2id$v=19$m=19456,t=2,p=1$CW+CpFWFO1+meCaQe66xgA$3uXlrP6Lf9gRp4jJpC6AwYHn5/iJlk6rc7EfhnMovow";
        let mut scratch = Scratch::default();
        for _ in 0..2 {
            assert_eq!(
                verify_password_with(&mut scratch, "secret", TUTORIAL_HASH),
                Verification::Match { rehash: None }
            );
            assert_eq!(
                verify_password_with(&mut scratch, "Secret", TUTORIAL_HASH),
                Verification::Mismatch
            );
            // A smaller memory cost in a larger buffer, and back.
            assert!(matches!(
                verify_password_with(&mut scratch, "older-pass", weak),
                Verification::Match { rehash: Some(_) }
            ));
            assert_eq!(
                verify_password_with(&mut scratch, "older-pas", weak),
                Verification::Mismatch
            );
        }
    }
}
