//! OpenID Connect's id token (Core 1.0 §2) and the claims `/userinfo` answers (§5.3):
//! who signed in, for which client, when and how, signed with the service's asymmetric
//! key (RS256 or EdDSA), which relying parties verify through the JWKS.
//!
//! `sub` is the user's row id: never reused (AUTOINCREMENT on SQLite, a sequence on
//! PostgreSQL), unlike a username, which may be deleted and registered again by someone
//! else.

use serde::Serialize;

use super::{
    openid_scopes::{Granted, OpenIdScopes},
    sessions::SignIn,
    Accounts, AccountsError, Login,
};
use crate::{auth::token::unix_now, db::user};

/// The subject identifier of `user` (OpenID Connect Core §8): stable, never reassigned.
pub fn subject(user: &user::Model) -> String {
    user.id.to_string()
}

/// The standard claims (Core §5.1) of the scopes granted: `profile` gives `name` and
/// `preferred_username`, `email` gives `email` and `email_verified`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StandardClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl StandardClaims {
    pub fn of(user: &user::Model, granted: OpenIdScopes) -> Self {
        let mut claims = Self::default();
        if granted.profile {
            claims.name.clone_from(&user.full_name);
            claims.preferred_username = Some(user.username.clone());
        }
        if granted.email {
            if let Some(email) = &user.email {
                claims.email = Some(email.clone());
                claims.email_verified = Some(user.email_verified);
            }
        }
        claims
    }
}

/// What `/userinfo` answers: the subject and the claims of the token's scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(flatten)]
    pub claims: StandardClaims,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    /// The client the token was issued to (Core §2), the only audience.
    azp: &'a str,
    exp: u64,
    iat: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    amr: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_hash: Option<String>,
    #[serde(flatten)]
    claims: StandardClaims,
}

impl Accounts {
    /// The id token of `login` for client `client_id`, from `issuer`, echoing `nonce`.
    pub(super) fn id_token(
        &self,
        issuer: &str,
        client_id: &str,
        login: &Login,
        sign_in: &SignIn,
        nonce: Option<&str>,
    ) -> Result<String, AccountsError> {
        let now = unix_now();
        let claims = IdTokenClaims {
            iss: issuer,
            sub: subject(&login.user),
            aud: client_id,
            azp: client_id,
            exp: now.saturating_add(self.tokens.lifetime_secs()),
            iat: now,
            auth_time: u64::try_from(sign_in.auth_time).unwrap_or_default(),
            nonce,
            amr: sign_in.amr.split_whitespace().collect(),
            at_hash: self.tokens.at_hash(&login.access_token),
            claims: StandardClaims::of(&login.user, login.scope.openid),
        };
        Ok(self.tokens.sign_claims(&claims)?)
    }

    /// What `/userinfo` answers for access token `token`: it must be valid and carry
    /// `openid` ([`AccountsError::InsufficientScope`] otherwise).
    pub async fn userinfo(&self, token: &str) -> Result<UserInfo, AccountsError> {
        let (claims, user) = self.token_user(token).await?;
        if user.disabled {
            return Err(AccountsError::InvalidToken);
        }
        let granted = Granted::stored(claims.scope.as_deref().unwrap_or_default());
        if !granted.openid.openid {
            return Err(AccountsError::InsufficientScope);
        }
        Ok(UserInfo {
            sub: subject(&user),
            claims: StandardClaims::of(&user, granted.openid),
        })
    }
}
