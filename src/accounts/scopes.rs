//! Scopes: what a token may be used for. Each user holds a set (stored with the user); a
//! token carries the scopes it was granted at login; an operation requires some. A request
//! passes when the operation's scopes are in the token's scopes *and* still held by the
//! user, so a scope taken away stops working at once, without logging anyone out.

use std::fmt;

use super::{Accounts, AccountsError};
use crate::db::user;

/// Every scope gatehouse knows. An operation declares the ones it needs with
/// `#[oai(scope = "Scope::...")]` on its bearer parameter (see `api::security`); that
/// one annotation gives the document, Swagger UI's Authorize dialog and the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Me,
    Items,
    Admin,
    Introspect,
    /// The worked example of docs/architecture.md (`api::reports`), built only by its test.
    #[cfg(test)]
    Reports,
}

impl Scope {
    #[cfg(not(test))]
    pub const ALL: [Scope; 4] = [Scope::Me, Scope::Items, Scope::Admin, Scope::Introspect];
    #[cfg(test)]
    pub const ALL: [Scope; 5] = [
        Scope::Me,
        Scope::Items,
        Scope::Admin,
        Scope::Introspect,
        Scope::Reports,
    ];

    /// The name in tokens, in `scope` form fields and in the database.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::Me => "me",
            Scope::Items => "items",
            Scope::Admin => "admin",
            Scope::Introspect => "introspect",
            #[cfg(test)]
            Scope::Reports => "reports",
        }
    }

    /// What the scope allows, as Swagger UI's Authorize dialog shows it.
    pub const fn description(self) -> &'static str {
        match self {
            Scope::Me => "Read information about the current user.",
            Scope::Items => "Read items.",
            Scope::Admin => {
                "Manage users (create, read, change, disable and delete them) and OAuth clients."
            }
            Scope::Introspect => "Introspect tokens (for other services verifying them).",
            #[cfg(test)]
            Scope::Reports => "Read the sales reports.",
        }
    }

    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of scopes, kept in [`Scope::ALL`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u32);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);

    /// What a user created without a choice holds: what the JWT chapter's operations need.
    pub const DEFAULT_HELD: Scopes = Scopes(1 << Scope::Me as u32 | 1 << Scope::Items as u32);

    pub fn all() -> Scopes {
        Scope::ALL.into_iter().collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & (1 << scope as u32) != 0
    }

    pub fn contains_all(self, scopes: &[Scope]) -> bool {
        scopes.iter().all(|s| self.contains(*s))
    }

    /// Whether every one of `names` is a scope in the set (an unknown name never is).
    pub fn contains_names(self, names: &[&str]) -> bool {
        names
            .iter()
            .all(|name| Scope::from_name(name).is_some_and(|s| self.contains(s)))
    }

    /// The set with `scope` added.
    pub fn with(self, scope: Scope) -> Scopes {
        Scopes(self.0 | 1 << scope as u32)
    }

    pub fn intersection(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The known scopes among space-separated `names`; unknown names are left out, as a
    /// token request's unknown scopes are (RFC 6749 §3.3 lets the server grant fewer).
    pub fn lenient(names: &str) -> Scopes {
        names
            .split_whitespace()
            .filter_map(Scope::from_name)
            .collect()
    }

    /// Space-separated `names`, every one of them known; an unknown one is an error that
    /// names it (for settings, the CLI and the admin API).
    pub fn strict(names: &str) -> Result<Scopes, AccountsError> {
        names
            .split_whitespace()
            .map(|name| Scope::from_name(name).ok_or_else(|| unknown_scope(name)))
            .collect()
    }

    /// Each of `names` known, as [`Scopes::strict`].
    pub fn strict_list<S: AsRef<str>>(names: &[S]) -> Result<Scopes, AccountsError> {
        names
            .iter()
            .map(|name| {
                let name = name.as_ref();
                Scope::from_name(name).ok_or_else(|| unknown_scope(name))
            })
            .collect()
    }

    pub fn names(self) -> Vec<String> {
        self.iter().map(|s| s.name().to_owned()).collect()
    }
}

fn unknown_scope(name: &str) -> AccountsError {
    let known: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
    AccountsError::Invalid {
        field: "scopes",
        message: format!(
            "unknown scope {name:?}; the scopes are: {}",
            known.join(" ")
        ),
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | 1 << s as u32))
    }
}

/// Space separated, the form of tokens, `scope` fields and the database (`""` for none).
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::name).collect();
        f.write_str(&names.join(" "))
    }
}

/// The scopes `user` holds now.
pub fn held(user: &user::Model) -> Scopes {
    Scopes::lenient(&user.scopes)
}

impl Accounts {
    /// The scopes a token issued to `user` gets: the `requested` ones the user holds; with
    /// none requested, `DEFAULT_SCOPES` when configured, else every scope the user holds
    /// (so clients of the JWT chapter, which send no scope, keep working).
    pub(super) fn granted_scopes(&self, user: &user::Model, requested: &[String]) -> Scopes {
        let wanted = if requested.is_empty() {
            self.default_scopes.unwrap_or_else(Scopes::all)
        } else {
            Scopes::lenient(&requested.join(" "))
        };
        wanted.intersection(held(user))
    }

    /// The scopes a validated token may use now: those it carries (a token without a
    /// `scope` claim carries what a login without `scope` is granted) that `user` still holds.
    pub(super) fn usable_scopes(&self, user: &user::Model, carried: Option<&str>) -> Scopes {
        let carried = match carried {
            Some(names) => Scopes::lenient(names),
            None => self.default_scopes.unwrap_or_else(Scopes::all),
        };
        carried.intersection(held(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_space_separated_in_declared_order() {
        let s = Scopes::lenient("items  bogus me");
        assert_eq!(s.to_string(), "me items");
        assert_eq!(Scopes::NONE.to_string(), "");
        assert_eq!(Scopes::DEFAULT_HELD.to_string(), "me items");
        assert!(Scopes::all()
            .to_string()
            .starts_with("me items admin introspect"));
        assert!(Scopes::strict("me bogus").is_err());
        assert_eq!(Scopes::strict(" admin ").unwrap().to_string(), "admin");
        assert!(s.contains_all(&[Scope::Items, Scope::Me]));
        assert!(!s.contains(Scope::Admin));
    }
}
