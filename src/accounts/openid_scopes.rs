//! What a sign-in grants: the service's scopes ([`Scopes`]) and, through the
//! authorization-code flow, OpenID Connect's (`openid`, `profile`, `email`), which no user
//! needs to hold: they ask for the user's identity, not for a power.
//!
//! A session keeps both in its `scope`, space separated, so refreshed tokens carry them
//! too; `/userinfo` needs `openid`.

use std::fmt;

use super::Scopes;

/// OpenID Connect's scopes, as names.
pub const OPENID: &str = "openid";
pub const PROFILE: &str = "profile";
pub const EMAIL: &str = "email";
/// All three, in the order the documents list them.
pub const NAMES: [&str; 3] = [OPENID, PROFILE, EMAIL];

/// The OpenID Connect scopes of a grant: `profile` and `email` count only with `openid`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenIdScopes {
    pub openid: bool,
    pub profile: bool,
    pub email: bool,
}

impl OpenIdScopes {
    pub const NONE: OpenIdScopes = OpenIdScopes {
        openid: false,
        profile: false,
        email: false,
    };

    /// Whether `name` is one of OpenID Connect's scopes.
    pub fn is_name(name: &str) -> bool {
        NAMES.contains(&name)
    }

    /// The OpenID Connect scopes among space-separated `names` (others are left out).
    pub fn lenient(names: &str) -> OpenIdScopes {
        let has = |wanted: &str| names.split_whitespace().any(|n| n == wanted);
        let openid = has(OPENID);
        OpenIdScopes {
            openid,
            profile: openid && has(PROFILE),
            email: openid && has(EMAIL),
        }
    }

    /// Those of `self` that `other` has too.
    pub fn intersection(self, other: OpenIdScopes) -> OpenIdScopes {
        OpenIdScopes {
            openid: self.openid && other.openid,
            profile: self.profile && other.profile,
            email: self.email && other.email,
        }
    }

    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (self.openid, OPENID),
            (self.profile, PROFILE),
            (self.email, EMAIL),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
    }
}

/// The scopes a sign-in granted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Granted {
    pub scopes: Scopes,
    pub openid: OpenIdScopes,
}

impl Granted {
    /// The service's scopes alone (the password grant's).
    pub fn service(scopes: Scopes) -> Self {
        Self {
            scopes,
            openid: OpenIdScopes::NONE,
        }
    }

    /// What a session's `scope` (this type's `Display`) holds.
    pub fn stored(scope: &str) -> Self {
        Self {
            scopes: Scopes::lenient(scope),
            openid: OpenIdScopes::lenient(scope),
        }
    }
}

/// Space separated: the service's scopes, then OpenID Connect's.
impl fmt::Display for Granted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .scopes
            .names()
            .into_iter()
            .chain(self.openid.names().map(str::to_owned))
            .collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Scope;

    #[test]
    fn a_grant_reads_back_from_its_stored_form() {
        let granted = Granted {
            scopes: [Scope::Me, Scope::Items].into_iter().collect(),
            openid: OpenIdScopes::lenient("email openid"),
        };
        assert_eq!(granted.to_string(), "me items openid email");
        assert_eq!(Granted::stored(&granted.to_string()), granted);
        assert_eq!(Granted::service(Scopes::NONE).to_string(), "");
    }

    #[test]
    fn profile_and_email_count_only_with_openid() {
        assert_eq!(OpenIdScopes::lenient("profile email"), OpenIdScopes::NONE);
        let all = OpenIdScopes::lenient("openid profile email");
        assert!(all.openid && all.profile && all.email);
    }
}
