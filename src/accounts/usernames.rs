//! Usernames: how a new one is prepared, what it may not contain, and when two look alike.
//!
//! A new name is prepared as RFC 8265's UsernameCasePreserved profile prepares one
//! (§3.4): fullwidth and halfwidth characters are mapped to their decompositions
//! (`ｊｏｈｎ` → `john`), then the name is normalized to NFC; the prepared form is what is
//! stored. It is refused if it then holds a character of the general categories Cc
//! (controls), Cf (invisible and direction formatting: U+200B, U+FEFF, U+202E), Zl, Zp
//! (line and paragraph separators) or Zs (spaces), or is not 1 to
//! [`MAX_USERNAME_CHARS`] characters long. The profile's base class (IdentifierClass) and
//! its Bidi Rule are not applied: they would also refuse symbols, emoji and most
//! punctuation, which names could hold before and which are not what makes a name a
//! disguise.
//!
//! Two names look alike when the Unicode TR39 confusable skeletons of their case-folded
//! forms are equal: `johndoe`, `JohnDoe`, Cyrillic `jоhndoe`, `jᴏhndoe`. The users table
//! keeps a key derived from each user's skeleton under a UNIQUE index, so a new name that
//! looks like an existing one is "already registered", and the database itself refuses
//! the second of two look-alike names whose creations race, on any number of replicas.
//! The key is the SHA-256 of the skeleton rather than the skeleton: a skeleton can be 18
//! times longer than its name, past what a PostgreSQL index entry may hold.
//!
//! Names stored before these rules keep working as they are. [`record_look_alike_keys`]
//! gives each existing user its key when the server starts; where two existing names
//! already look alike, the older user holds the key and the other keeps working without.
//!
//! A login looks a name up as sent and, failing that, in its prepared form, so a stored
//! `john` also logs in when typed fullwidth, and its failed logins are counted under the
//! prepared form (see `login.rs`).

use std::borrow::Cow;

use caseless::Caseless;
use precis_profiles::{precis_core::profile::Rules, UsernameCasePreserved};
use sea_orm::DbErr;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::{AccountsError, MAX_USERNAME_CHARS};
use crate::db::{username_skeleton, Db};

/// `name` prepared for storage as a new username, or why it cannot be one.
pub fn prepare(name: &str) -> Result<String, AccountsError> {
    let prepared = mapped(name);
    if prepared.is_empty() || prepared.chars().count() > MAX_USERNAME_CHARS {
        return Err(invalid(format!(
            "username must be 1 to {MAX_USERNAME_CHARS} characters"
        )));
    }
    if let Some((c, what)) = prepared.chars().find_map(|c| refused(c).map(|w| (c, w))) {
        return Err(invalid(match what {
            // As before these rules; a terminal shows most of them.
            Refused::Control => "username must not contain control characters".to_owned(),
            Refused::Other(what) => {
                format!("username must not contain {what} (U+{:04X})", u32::from(c))
            }
        }));
    }
    Ok(prepared.into_owned())
}

/// `name` width-mapped and in NFC, as [`prepare`] stores a name, with nothing refused:
/// what a login looks up when the name as sent is not found.
pub fn mapped(name: &str) -> Cow<'_, str> {
    let profile = UsernameCasePreserved::new();
    // Neither rule fails on a `str`: they fail only on a mapping to a non-character,
    // which the crate's tables, generated from the Unicode data, do not hold.
    let Ok(width_mapped) = profile.width_mapping_rule(name) else {
        return Cow::Borrowed(name);
    };
    profile
        .normalization_rule(width_mapped.clone())
        .unwrap_or(width_mapped)
}

/// The look-alike key of a name: the SHA-256 (hex) of the TR39 skeleton of the full case
/// folding of its [`mapped`] form (what [`prepare`] stores; a name stored before the rules
/// is keyed as if prepared). Equal keys, equal-looking names.
pub fn look_alike_key(name: &str) -> String {
    // Canonical caseless form (Unicode §3.13 D145 without its last NFD, which the
    // skeleton applies): folds `ǅ` and `Ǆ` as it folds their decompositions.
    let folded: String = mapped(name).chars().nfd().default_case_fold().collect();
    let skeleton: String = unicode_security::skeleton(&folded).collect();
    hex::encode(Sha256::digest(skeleton.as_bytes()))
}

/// Users whose key [`record_look_alike_keys`] reads and records at a time.
const RECORD_PAGE: u64 = 500;

/// Gives each user without a recorded look-alike key theirs, oldest user first, unless a
/// user holds it already; a name that looks like another user's is logged and keeps
/// working without. Returns how many keys it recorded.
///
/// Safe to run on several replicas at once, and on every start: a user keeps a key once
/// recorded, and a key is never recorded twice.
pub async fn record_look_alike_keys(db: &Db) -> Result<usize, DbErr> {
    let mut recorded = 0;
    let mut after = i32::MIN;
    loop {
        let page = username_skeleton::unrecorded(db, after, RECORD_PAGE).await?;
        let Some(&(last, _)) = page.last() else {
            return Ok(recorded);
        };
        after = last;
        let keyed: Vec<(i32, String, String)> = page
            .into_iter()
            .map(|(id, name)| {
                let key = look_alike_key(&name);
                (id, name, key)
            })
            .collect();
        let keys: Vec<String> = keyed.iter().map(|(_, _, key)| key.clone()).collect();
        let mut taken = username_skeleton::recorded_among(db, &keys).await?;
        let mut free = Vec::with_capacity(keyed.len());
        let mut free_names = Vec::with_capacity(keyed.len());
        for (id, name, key) in keyed {
            // `taken` grows with each key given out, so the older of two look-alikes
            // on the same page gets it.
            if taken.insert(key.clone()) {
                free.push((id, key));
                free_names.push(name);
            } else {
                unguarded(&name);
            }
        }
        if username_skeleton::record_all(db, &free).await? {
            recorded += free.len();
            continue;
        }
        // A user created meanwhile took one of the keys: one at a time.
        for ((id, key), name) in free.into_iter().zip(free_names) {
            if username_skeleton::record(db, id, &key).await? {
                recorded += 1;
            } else {
                unguarded(&name);
            }
        }
    }
}

/// Logs an existing name that keeps working without its look-alike key.
fn unguarded(name: &str) {
    tracing::warn!(
        user = %name,
        "this existing username looks like another user's; both keep working"
    );
}

/// Why a character may not be in a new name.
enum Refused {
    Control,
    Other(&'static str),
}

fn refused(c: char) -> Option<Refused> {
    Some(match c.general_category() {
        GeneralCategory::Control => Refused::Control,
        GeneralCategory::Format => Refused::Other("invisible or direction formatting characters"),
        GeneralCategory::SpaceSeparator => Refused::Other("spaces"),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Refused::Other("line or paragraph separators")
        }
        _ => return None,
    })
}

fn invalid(message: String) -> AccountsError {
    AccountsError::Invalid {
        field: "username",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(name: &str) -> String {
        match prepare(name) {
            Err(AccountsError::Invalid { field, message }) => {
                assert_eq!(field, "username");
                message
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }

    #[test]
    fn fullwidth_and_halfwidth_characters_are_mapped_to_their_decompositions() {
        assert_eq!(prepare("ｊｏｈｎｄｏｅ").unwrap(), "johndoe");
        assert_eq!(prepare("ＡＢＣ１２３＿").unwrap(), "ABC123_");
        // Halfwidth katakana and its voiced mark compose once in NFC.
        assert_eq!(prepare("ｶﾞ").unwrap(), "ガ");
        // The width mapping stops at the decomposition: U+FFE3 is a macron, not a space
        // and a combining macron (which NFKC would give).
        assert_eq!(prepare("a\u{ffe3}").unwrap(), "a\u{af}");
    }

    #[test]
    fn names_are_stored_in_nfc_and_case_is_preserved() {
        assert_eq!(prepare("jose\u{301}").unwrap(), "jos\u{e9}");
        assert_eq!(prepare("jos\u{e9}").unwrap(), "jos\u{e9}");
        assert_eq!(prepare("JohnDoe").unwrap(), "JohnDoe");
        // Compatibility characters other than width forms stay: only NFC, not NFKC.
        assert_eq!(prepare("ﬁle").unwrap(), "ﬁle");
        assert_eq!(
            prepare("o'brien@example.com").unwrap(),
            "o'brien@example.com"
        );
    }

    #[test]
    fn spaces_separators_and_invisible_or_direction_characters_are_refused() {
        let cases = [
            (" johndoe", "spaces (U+0020)"),
            ("johndoe ", "spaces (U+0020)"),
            ("john doe", "spaces (U+0020)"),
            ("john\u{a0}doe", "spaces (U+00A0)"),
            // The ideographic space is fullwidth: mapped to U+0020 first.
            ("john\u{3000}doe", "spaces (U+0020)"),
            (
                "john\u{200b}doe",
                "invisible or direction formatting characters (U+200B)",
            ),
            (
                "\u{feff}johndoe",
                "invisible or direction formatting characters (U+FEFF)",
            ),
            (
                "john\u{202e}eod",
                "invisible or direction formatting characters (U+202E)",
            ),
            (
                "john\u{2066}doe",
                "invisible or direction formatting characters (U+2066)",
            ),
            ("john\u{2028}doe", "line or paragraph separators (U+2028)"),
            ("john\u{2029}doe", "line or paragraph separators (U+2029)"),
        ];
        for (name, what) in cases {
            assert_eq!(
                message(name),
                format!("username must not contain {what}"),
                "{name:?}"
            );
        }
        for name in ["a\u{7}b", "da\tve", "x\u{85}", "nul\0"] {
            assert_eq!(
                message(name),
                "username must not contain control characters",
                "{name:?}"
            );
        }
    }

    #[test]
    fn length_is_counted_on_the_prepared_name() {
        assert_eq!(message(""), "username must be 1 to 128 characters");
        assert_eq!(
            message(&"x".repeat(129)),
            "username must be 1 to 128 characters"
        );
        assert_eq!(prepare(&"x".repeat(128)).unwrap().len(), 128);
        // 129 characters in NFD are 128 in NFC.
        let decomposed = format!("{}e\u{301}", "x".repeat(127));
        assert_eq!(prepare(&decomposed).unwrap().chars().count(), 128);
    }

    #[test]
    fn mapping_for_a_login_refuses_nothing() {
        assert_eq!(mapped("ｊｏｈｎ\u{200b}"), "john\u{200b}");
        assert_eq!(mapped("jose\u{301}"), "jos\u{e9}");
        assert!(matches!(mapped("johndoe"), Cow::Borrowed("johndoe")));
    }

    #[test]
    fn look_alike_names_share_a_key_and_others_do_not() {
        let johndoe = look_alike_key("johndoe");
        for alike in [
            "JohnDoe",
            "JOHNDOE",
            "j\u{43e}hndoe",  // Cyrillic о
            "johnd\u{153}",   // the ligature œ
            "johnd\u{1d0f}e", // small capital o
        ] {
            assert_eq!(look_alike_key(alike), johndoe, "{alike:?}");
        }
        // TR39 maps the digit 0 to a capital O, which the folding (done before) does not
        // meet: `j0hndoe` is a name of its own, as `jOhndoe` would be without folding.
        for other in ["johndoe2", "jonhdoe", "john", "j0hndoe"] {
            assert_ne!(look_alike_key(other), johndoe, "{other:?}");
        }
        assert_eq!(look_alike_key("stra\u{df}e"), look_alike_key("STRASSE"));
        assert_eq!(look_alike_key("ｊｏｈｎｄｏｅ"), johndoe);
        assert_eq!(look_alike_key("rn"), look_alike_key("m"));
        assert_eq!(johndoe.len(), 64);
    }

    #[test]
    fn a_key_has_a_fixed_length_however_long_the_skeleton() {
        // U+FDFA's skeleton is 18 characters: a PostgreSQL index entry could not hold
        // the skeleton of 128 of them.
        let name = "\u{fdfa}".repeat(MAX_USERNAME_CHARS);
        assert_eq!(look_alike_key(&prepare(&name).unwrap()).len(), 64);
    }
}
