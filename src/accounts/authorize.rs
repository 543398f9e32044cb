//! Sign in with gatehouse (OAuth 2.1's authorization-code flow with PKCE), what
//! `api::authorize` and `POST /token` call: the browser's sign-in, which later
//! authorizations reuse (single sign-on); the scopes a client may ask for; codes, and
//! their exchange for the same session and pair of tokens a password login gets.
//!
//! Every decision between concurrent requests is the database's: a code is spent by one
//! conditional update (see `db::authorization_code`), so two exchanges of one code, on
//! one replica or two, never both succeed, and the session the first started is ended.

use std::net::IpAddr;

use secrecy::SecretString;

use super::{
    clients::Client,
    held_scopes, now_secs,
    openid_scopes::{Granted, OpenIdScopes},
    secs,
    sessions::SignIn,
    Accounts, AccountsError, GrantError, Login, Origin, Scope, Scopes,
};
use crate::{
    auth::{
        email_token::{email_token_hash, new_email_token, MAX_TOKEN_CHARS},
        pkce,
        refresh_token::new_session_id,
    },
    db::{
        authorization_code::{self, NewCode, Spent},
        browser_session, session, user,
    },
};

/// How long a code may be exchanged (RFC 6749 §4.1.2 recommends at most 10 minutes;
/// SPEC §12 at most 60 s).
pub const CODE_LIFETIME_SECS: i64 = 60;

/// A browser signed in on the login page: who, and when and how.
#[derive(Debug, Clone)]
pub struct BrowserSignIn {
    pub user: user::Model,
    /// Unix seconds.
    pub auth_time: i64,
    /// RFC 8176 methods, space separated.
    pub amr: String,
}

impl BrowserSignIn {
    /// Whether the sign-in is at most `max_age` seconds old (OpenID Connect's `max_age`).
    pub fn within(&self, max_age: i64) -> bool {
        now_secs().saturating_sub(self.auth_time) <= max_age
    }
}

/// Why an authorization request's `scope` is refused (`invalid_scope`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeRefused {
    #[error("unknown scope {0:?}")]
    Unknown(String),
    #[error("scope {0:?} is not registered for this client")]
    NotRegistered(String),
    #[error("scope \"openid\" needs asymmetric id tokens: JWT_ALGORITHM=RS256 or EdDSA")]
    OpenIdUnavailable,
}

/// What a code is issued for: a validated authorization request.
#[derive(Debug, Clone)]
pub struct CodeRequest<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub granted: Granted,
    pub nonce: Option<&'a str>,
}

/// A code exchanged: the login (a session with its pair) and, with `openid`, its id token.
#[derive(Debug)]
pub struct CodeExchange {
    pub login: Login,
    pub id_token: Option<String>,
}

/// A code presented at the token endpoint.
#[derive(Debug, Clone, Copy)]
pub struct PresentedCode<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
}

impl Accounts {
    /// Signs a browser in: the checks of every sign-in (see `sign_in`: limits, password,
    /// second factor), then a browser session. Returns the cookie's value (256 random
    /// bits; only its hash is stored) and the sign-in.
    pub async fn start_browser_session(
        &self,
        client: Option<IpAddr>,
        username: &str,
        password: SecretString,
        otp: Option<SecretString>,
    ) -> Result<(String, BrowserSignIn), AccountsError> {
        let (user, methods) = self.sign_in(client, username, password, otp).await?;
        // The tutorial lets a disabled user get a token that every operation then refuses;
        // a browser session would only lead to a code that cannot be exchanged.
        if user.disabled {
            return Err(AccountsError::InactiveUser);
        }
        let sign_in = SignIn::now(&methods);
        let (cookie, id_hash) = new_email_token();
        let lifetime = secs(self.sessions.browser_lifetime);
        browser_session::insert(
            &self.db,
            browser_session::Model {
                id_hash,
                user_id: user.id,
                token_version: user.token_version,
                auth_time: sign_in.auth_time,
                amr: sign_in.amr.clone(),
                expires_at: sign_in.auth_time.saturating_add(lifetime),
            },
        )
        .await?;
        tracing::info!(user = %user.username, "signed in on the login page");
        Ok((
            cookie,
            BrowserSignIn {
                user,
                auth_time: sign_in.auth_time,
                amr: sign_in.amr,
            },
        ))
    }

    /// The sign-in of the browser session whose cookie is `cookie`, if it is live: not
    /// expired, its user enabled and unchanged since (a password change, a disable or a
    /// revoke ends it).
    pub async fn browser_session(
        &self,
        cookie: &str,
    ) -> Result<Option<BrowserSignIn>, AccountsError> {
        if cookie.is_empty() || cookie.len() > MAX_TOKEN_CHARS {
            return Ok(None);
        }
        let found =
            browser_session::find_live(&self.db, &email_token_hash(cookie), now_secs()).await?;
        Ok(found.map(|(session, user)| BrowserSignIn {
            user,
            auth_time: session.auth_time,
            amr: session.amr,
        }))
    }

    /// Ends the browser session whose cookie is `cookie` (RP-initiated logout).
    pub async fn end_browser_session(&self, cookie: &str) -> Result<(), AccountsError> {
        if !cookie.is_empty() && cookie.len() <= MAX_TOKEN_CHARS {
            browser_session::end(&self.db, &email_token_hash(cookie)).await?;
        }
        Ok(())
    }

    /// The scopes an authorization request of `client` asks for, checked before anyone
    /// signs in: every name known, registered for the client, and `openid` only where id
    /// tokens can be signed. Without `scope`, the client's registered scopes of the
    /// service (OpenID Connect's must be asked for).
    pub fn requested_scopes(
        &self,
        client: &Client,
        requested: Option<&str>,
    ) -> Result<Granted, ScopeRefused> {
        let registered = |name: &str| client.scopes.iter().any(|s| s == name);
        let names: Vec<&str> = requested.unwrap_or_default().split_whitespace().collect();
        if names.is_empty() {
            let scopes = Scope::ALL
                .into_iter()
                .filter(|s| registered(s.name()))
                .collect();
            return Ok(Granted::service(scopes));
        }
        let mut scopes = Scopes::NONE;
        for name in &names {
            let known = Scope::from_name(name);
            if known.is_none() && !OpenIdScopes::is_name(name) {
                return Err(ScopeRefused::Unknown((*name).to_owned()));
            }
            if !registered(name) {
                return Err(ScopeRefused::NotRegistered((*name).to_owned()));
            }
            if let Some(scope) = known {
                scopes = scopes.with(scope);
            }
        }
        let openid = OpenIdScopes::lenient(&names.join(" "));
        if openid.openid && !self.tokens.signs_id_tokens() {
            return Err(ScopeRefused::OpenIdUnavailable);
        }
        Ok(Granted { scopes, openid })
    }

    /// A code for `sign_in`'s user, for the request `request`: the service's scopes
    /// granted are those requested that the user holds (as at `/token`). Lives
    /// [`CODE_LIFETIME_SECS`]; only its hash is stored.
    pub async fn issue_code(
        &self,
        sign_in: &BrowserSignIn,
        request: CodeRequest<'_>,
    ) -> Result<String, AccountsError> {
        let granted = Granted {
            scopes: request
                .granted
                .scopes
                .intersection(held_scopes(&sign_in.user)),
            openid: request.granted.openid,
        };
        let (code, code_hash) = new_email_token();
        authorization_code::insert(
            &self.db,
            NewCode {
                code_hash,
                client_id: request.client_id.to_owned(),
                user_id: sign_in.user.id,
                token_version: sign_in.user.token_version,
                redirect_uri: request.redirect_uri.to_owned(),
                code_challenge: request.code_challenge.to_owned(),
                scope: granted.to_string(),
                nonce: request.nonce.map(str::to_owned),
                auth_time: sign_in.auth_time,
                amr: sign_in.amr.clone(),
                expires_at: now_secs().saturating_add(CODE_LIFETIME_SECS),
            },
        )
        .await?;
        Ok(code)
    }

    /// The authorization-code grant (RFC 6749 §4.1.3, RFC 7636 §4.6) for `client`,
    /// authenticated already: spends the code, checks that it is the client's, for
    /// `redirect_uri`, and that `code_verifier` matches its challenge, and starts a
    /// session as a password login does. A code presented a second time is refused and
    /// ends the session its first exchange started. `issuer` is what the id token names.
    pub async fn redeem_code(
        &self,
        client: &Client,
        presented: PresentedCode<'_>,
        origin: &Origin,
        issuer: &str,
    ) -> Result<Result<CodeExchange, GrantError>, AccountsError> {
        if presented.code.is_empty() || presented.code.len() > MAX_TOKEN_CHARS {
            return Ok(Err(GrantError::InvalidGrant));
        }
        let code_hash = email_token_hash(presented.code);
        let session_id = new_session_id();
        let code = match authorization_code::spend(&self.db, &code_hash, &session_id, now_secs())
            .await?
        {
            Spent::Spent(code) => code,
            Spent::Unknown => return Ok(Err(GrantError::InvalidGrant)),
            Spent::AlreadySpent { session_id } => {
                if let Some(id) = session_id {
                    session::end(&self.db, &id).await?;
                }
                tracing::warn!(client = %client.client_id, "authorization code presented again: its session is ended");
                return Ok(Err(GrantError::CodeReused));
            }
        };
        if code.client_id != client.client_id
            || code.redirect_uri != presented.redirect_uri
            || !pkce::verify(presented.code_verifier, &code.code_challenge)
        {
            tracing::info!(client = %client.client_id, "authorization code refused: client, redirect URI or verifier do not match");
            return Ok(Err(GrantError::InvalidGrant));
        }
        let Some(user) = user::find_by_id(&self.db, code.user_id).await? else {
            return Ok(Err(GrantError::InvalidGrant));
        };
        if user.disabled || user.token_version != code.token_version {
            return Ok(Err(GrantError::InvalidGrant));
        }
        let granted = Granted::stored(&code.scope);
        let granted = Granted {
            scopes: granted.scopes.intersection(held_scopes(&user)),
            ..granted
        };
        let sign_in = SignIn {
            auth_time: code.auth_time,
            amr: code.amr.clone(),
        };
        let login = match self
            .start_session(user, granted, origin, sign_in.clone(), session_id.clone())
            .await
        {
            Ok(login) => login,
            // The user changed since the code was issued.
            Err(AccountsError::IncorrectCredentials) => return Ok(Err(GrantError::InvalidGrant)),
            Err(e) => return Err(e),
        };
        // A second exchange that ran while this one started the session could not end it.
        if authorization_code::was_reused(&self.db, &code_hash).await? {
            session::end(&self.db, &session_id).await?;
            return Ok(Err(GrantError::CodeReused));
        }
        let id_token = if granted.openid.openid {
            Some(self.id_token(
                issuer,
                &client.client_id,
                &login,
                &sign_in,
                code.nonce.as_deref(),
            )?)
        } else {
            None
        };
        Ok(Ok(CodeExchange { login, id_token }))
    }

    /// Deletes expired codes and browser sessions; how many of each.
    pub async fn purge_expired_sign_ins(&self) -> Result<(u64, u64), AccountsError> {
        let now = now_secs();
        let codes = authorization_code::purge_expired(&self.db, now).await?;
        let browsers = browser_session::purge_expired(&self.db, now).await?;
        Ok((codes, browsers))
    }
}
