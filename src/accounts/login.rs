//! The password login: failed-login limits, the password check, the access token.

use std::net::IpAddr;

use secrecy::SecretString;

use super::{
    attempt::Attempt, openid_scopes::Granted, sessions::SignIn, totp::Methods, usernames, Accounts,
    AccountsError, Origin,
};
use crate::{
    auth::{
        hashing_pool::HashSlot,
        password::{Verification, DUMMY_HASH},
        refresh_token::new_session_id,
    },
    db::user,
};

/// A successful login or refresh: the user and the tokens issued to them.
#[derive(Debug)]
pub struct Login {
    pub user: user::Model,
    pub access_token: String,
    /// `None` when refresh tokens are disabled.
    pub refresh_token: Option<String>,
    /// The scopes the token was granted.
    pub scope: Granted,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
}

impl Accounts {
    /// Checks `username`'s `password` (and, for a user with TOTP on, `otp`: see
    /// `totp.rs`) and starts a session with an access token (and a refresh token), unless
    /// the account or the client address has failed too often (see `Self::check_login`).
    /// The token gets the `requested` scopes the user holds (see `granted_scopes`).
    ///
    /// A wrong `otp` counts as a failed login, like a wrong password, so guessing codes
    /// meets the same limits. A missing one does not: the password was right, and a
    /// client that cannot send `otp` learns the factor is needed.
    pub async fn login(
        &self,
        origin: &Origin,
        username: &str,
        password: SecretString,
        otp: Option<SecretString>,
        requested: &[String],
    ) -> Result<Login, AccountsError> {
        let (user, methods) = self.sign_in(origin.client, username, password, otp).await?;
        let granted = Granted::service(self.granted_scopes(&user, requested));
        let sign_in = SignIn::now(&methods);
        self.start_session(user, granted, origin, sign_in, new_session_id())
            .await
    }

    /// The checks of a sign-in, `/token`'s and the login page's alike: the limits, the
    /// password, the second factor and `REQUIRE_VERIFIED_EMAIL`. The user and the
    /// methods they signed in with.
    pub(super) async fn sign_in(
        &self,
        client: Option<IpAddr>,
        username: &str,
        password: SecretString,
        otp: Option<SecretString>,
    ) -> Result<(user::Model, Methods), AccountsError> {
        let ((user, factor), attempt) = self
            .check_login_unsettled(client, username, password)
            .await?;
        let methods = match self.second_factor(&user, factor, otp.as_ref()).await {
            Ok(methods) => methods,
            Err(AccountsError::IncorrectCode) => {
                tracing::info!(user = %user.username, "login refused: incorrect second factor");
                self.attempt_failed(attempt).await?;
                return Err(AccountsError::IncorrectCode);
            }
            Err(e) => {
                self.attempt_abandoned(attempt).await;
                return Err(e);
            }
        };
        self.attempt_succeeded(attempt, user.id).await?;
        // Only once the password (and second factor) is right: it tells a guesser nothing.
        if self.rules.require_verified_email && !user.email_verified {
            return Err(AccountsError::EmailNotVerified);
        }
        Ok((user, methods))
    }

    /// The user if `password` is `username`'s, unless the account or the client address
    /// (`client`; `None` for a transport without one) has failed too often. A wrong
    /// password counts as a failure for both.
    ///
    /// The attempt is counted as a failure before any hash is computed (and given back if
    /// it succeeds), and the limits answer the same whether the username exists or not, so
    /// a burst gets no more password checks than the limit, and no hint which accounts
    /// exist. See `attempt.rs` for which windows an attempt counts against.
    pub(super) async fn check_login(
        &self,
        client: Option<IpAddr>,
        username: &str,
        password: SecretString,
    ) -> Result<user::Model, AccountsError> {
        let ((user, _), attempt) = self
            .check_login_unsettled(client, username, password)
            .await?;
        self.attempt_succeeded(attempt, user.id).await?;
        Ok(user)
    }

    /// [`Self::check_login`] with the user's second factor, and a right password's attempt
    /// still reserved as a failure, for the caller to settle once the rest of the login is
    /// decided.
    async fn check_login_unsettled(
        &self,
        client: Option<IpAddr>,
        username: &str,
        password: SecretString,
    ) -> Result<(user::Login, Attempt), AccountsError> {
        // Only a non-TCP transport has no peer address; they all count as one client.
        let address = client.map_or_else(|| "unknown".to_owned(), address_key);
        // First, before any database work: a saturated pool must refuse cheaply. Each
        // address gets a fair share of it.
        let slot = self.hasher.try_reserve(&address)?;
        let account = account_key(username);
        let attempt = match self.reserve_attempt(&account, &address).await {
            Err(AccountsError::TooManyAttempts { retry_after }) => {
                tracing::info!(user = %username, address = %address, "login refused: too many failures");
                return Err(AccountsError::TooManyAttempts { retry_after });
            }
            other => other?,
        };
        let found = match self.check_password(slot, username, password).await {
            Ok(found) => found,
            Err(AccountsError::IncorrectCredentials) => {
                // Counted already, before the hash, unless the database could not then.
                self.attempt_failed(attempt).await?;
                return Err(AccountsError::IncorrectCredentials);
            }
            Err(e) => {
                self.attempt_abandoned(attempt).await;
                return Err(e);
            }
        };
        Ok((found, attempt))
    }

    /// The user, with their second factor, if `password` is theirs.
    ///
    /// Unknown usernames take the same path at the same cost as wrong passwords: they are
    /// verified against [`DUMMY_HASH`], so neither the answer nor its timing tells an
    /// attacker which usernames exist.
    async fn check_password(
        &self,
        slot: HashSlot,
        username: &str,
        password: SecretString,
    ) -> Result<user::Login, AccountsError> {
        // As sent first: a name stored before the preparation rules logs in as it always did.
        let found = user::find_for_login(&self.db, username, &usernames::mapped(username)).await?;
        let stored = found
            .as_ref()
            .map_or(DUMMY_HASH, |(u, _)| u.hashed_password.as_str())
            .to_owned();
        let verification = slot.verify(password, stored).await?;
        let (Some((user, factor)), Verification::Match { rehash }) = (found, verification) else {
            return Err(AccountsError::IncorrectCredentials);
        };
        if let Some(new_hash) = rehash {
            // Best effort: the login succeeded either way, and the next one retries.
            if let Err(e) =
                user::upgrade_password_hash(&self.db, user.id, &user.hashed_password, new_hash)
                    .await
            {
                tracing::warn!(error = %e, user = %user.username, "could not upgrade password hash");
            } else {
                tracing::info!(user = %user.username, "upgraded outdated password hash");
            }
        }
        Ok((user, factor))
    }
}

/// The account a login is counted against: the username width-mapped and in NFC (the
/// forms that log in to one account share its failures; usernames are case-sensitive),
/// with NUL, which PostgreSQL text cannot hold, replaced.
fn account_key(username: &str) -> String {
    usernames::mapped(username).replace('\0', "\u{fffd}")
}

/// The key failed logins from `ip` are counted under: the IPv4 address, or the /64 of an
/// IPv6 one (a single host is usually given a whole /64).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => {
            let [a, b, c, d, ..] = ip.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_one_name_are_counted_as_one_account() {
        assert_eq!(account_key("ｊｏｈｎｄｏｅ"), "johndoe");
        assert_eq!(account_key("jose\u{301}"), account_key("jos\u{e9}"));
        assert_eq!(account_key("JohnDoe"), "JohnDoe");
        assert_eq!(account_key("a\0b"), "a\u{fffd}b");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        assert_eq!(address_key("203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }
}
