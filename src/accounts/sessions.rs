//! Sessions and refresh tokens (SPEC §7): what a password login starts, the refresh grant
//! with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2), revocation
//! (RFC 7009), and the caller's own list of sessions.
//!
//! Every decision between concurrent requests is taken by the database (a conditional
//! update in `db::group_commit`), never by a lock in this process, so replicas sharing
//! the database agree.

use std::{net::IpAddr, time::Duration};

use super::{
    held_scopes, now_secs,
    openid_scopes::{Granted, OpenIdScopes},
    secs,
    totp::Methods,
    Accounts, AccountsError, Login, Scopes,
};
use crate::{
    auth::{
        refresh_token::{hash_legacy_refresh_token, RefreshTokenClaims, RefreshTokenKey},
        token::{unix_now, AccessTokenFor},
    },
    db::{
        group_commit::Rotation,
        legacy_refresh_token,
        session::{self, NewSession, Started},
        user,
    },
};

/// Default of `REFRESH_TOKEN_EXPIRE_DAYS`.
pub const DEFAULT_REFRESH_TOKEN_EXPIRE_DAYS: u64 = 14;
/// Default of `REFRESH_REUSE_INTERVAL_SECS`: a spent refresh token is never accepted again.
pub const DEFAULT_REFRESH_REUSE_INTERVAL_SECS: u64 = 0;
/// Default of `LOGIN_SESSION_HOURS`.
pub const DEFAULT_LOGIN_SESSION_HOURS: u64 = 12;
/// Default of `MAX_SESSIONS_PER_USER`.
pub const DEFAULT_MAX_SESSIONS_PER_USER: u64 = 100;
/// Longest refresh token looked up; ours are 83 characters (43 before they carried
/// their session).
const MAX_REFRESH_TOKEN_CHARS: usize = 256;
/// Longest user agent kept with a session, in characters.
const MAX_USER_AGENT_CHARS: usize = 256;
/// How stale a session's "last used" may get before a request refreshes it: a write per
/// request would cost more than the bearer check itself.
const TOUCH_EVERY_SECS: i64 = 60;

/// How sessions and refresh tokens behave.
#[derive(Debug)]
pub struct SessionRules {
    /// How long a refresh token stays valid; `None`: no refresh tokens are issued.
    pub refresh_lifetime: Option<Duration>,
    /// How long the refresh token before a session's current one may still be presented,
    /// answering the current one; zero: a spent token presented again ends the session.
    pub reuse_interval: Duration,
    /// Live sessions per user; a login beyond it ends the user's oldest.
    pub max_per_user: u64,
    /// How long a sign-in on the login page lasts (`LOGIN_SESSION_HOURS`).
    pub browser_lifetime: Duration,
    pub key: RefreshTokenKey,
}

/// Where a login came from, kept with its session.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub client: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// A live session, as its user sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    /// Unix seconds, as is `last_used_at`.
    pub created_at: i64,
    pub last_used_at: i64,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// Whether the token that asked belongs to it.
    pub current: bool,
}

/// Why a refresh grant or a revocation is refused, in RFC 6749 §5.2 terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Unknown, expired, spent or revoked refresh token.
    #[error("The refresh token is invalid, expired or revoked")]
    InvalidGrant,
    /// A spent refresh token was presented again: the session is ended.
    #[error("The refresh token was already used; the session is ended")]
    Reused,
    #[error("The requested scope exceeds the scope granted at login")]
    InvalidScope,
    #[error("Refresh tokens are not issued by this server")]
    RefreshDisabled,
    /// An authorization code presented again: the session its first exchange started is
    /// ended (RFC 6749 §4.1.2).
    #[error("The authorization code was already used; the session it started is ended")]
    CodeReused,
}

impl Accounts {
    /// Starts session `id` for `user` (just signed in, as `sign_in` says) with `granted`,
    /// and issues its first access token and, unless disabled, refresh token.
    ///
    /// The session is stored only if the user's `token_version` is still the one the
    /// password check read: a login that raced a password change, a disable or a revoke
    /// is refused as if the password were wrong (it may well be, now), never answered
    /// with a session the change should have ended.
    pub(super) async fn start_session(
        &self,
        user: user::Model,
        granted: Granted,
        origin: &Origin,
        sign_in: SignIn,
        id: String,
    ) -> Result<Login, AccountsError> {
        let rules = &self.sessions;
        let now = now_secs();
        let access_expires =
            now.saturating_add(i64::try_from(self.tokens.lifetime_secs()).unwrap_or(i64::MAX));
        let refresh_expires = rules
            .refresh_lifetime
            .map(|lifetime| now.saturating_add(secs(lifetime)));
        let record = NewSession {
            id: id.clone(),
            user_id: user.id,
            token_version: user.token_version,
            scope: granted.to_string(),
            created_at: now,
            auth_time: sign_in.auth_time,
            expires_at: refresh_expires.map_or(access_expires, |r| r.max(access_expires)),
            amr: sign_in.amr.clone(),
            client_addr: origin.client.map(|ip| ip.to_string()),
            user_agent: origin
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
        };
        match session::start(&self.db, record, rules.max_per_user).await {
            Ok(Started::Started) => {
                let refresh_token = refresh_expires.map(|_| rules.key.token(&id, 0));
                self.issue(user, granted, Some(&id), &sign_in, refresh_token)
            }
            Ok(Started::UserChanged) => {
                tracing::info!(user = %user.username, "login refused: the user changed during the password check");
                Err(AccountsError::IncorrectCredentials)
            }
            Err(e) => {
                // A database that serves reads but refuses writes (read-only, locked,
                // full) still lets users in, as before sessions existed: with an access
                // token outside any session (its user's token_version still revokes it)
                // and no refresh token.
                tracing::warn!(error = %e, user = %user.username, "could not store a session: access token without one");
                self.issue(user, granted, None, &sign_in, None)
            }
        }
    }

    /// The answer to a login or a refresh: an access token of `session_id` (none: outside
    /// any session) for `user` with `scope`, carrying how they signed in, and
    /// `refresh_token`.
    fn issue(
        &self,
        user: user::Model,
        scope: Granted,
        session_id: Option<&str>,
        sign_in: &SignIn,
        refresh_token: Option<String>,
    ) -> Result<Login, AccountsError> {
        let scope_names = scope.to_string();
        let amr: Vec<&str> = sign_in.amr.split_whitespace().collect();
        let access_token = self.tokens.issue_access_token(
            &AccessTokenFor {
                username: &user.username,
                uid: user.id,
                token_version: user.token_version,
                scope: &scope_names,
                sid: session_id,
                auth_time: u64::try_from(sign_in.auth_time).unwrap_or_default(),
                amr: &amr,
                email_verified: user.email_verified,
            },
            unix_now(),
        )?;
        Ok(Login {
            user,
            access_token,
            refresh_token,
            scope,
            expires_in: self.tokens.lifetime_secs(),
        })
    }

    /// The session and rotation count `token` names: a token of ours (see
    /// `auth::refresh_token`), or one issued before tokens carried them and still listed
    /// in `db::legacy_refresh_token`.
    async fn presented_refresh(
        &self,
        token: &str,
    ) -> Result<Option<RefreshTokenClaims>, AccountsError> {
        if token.is_empty() || token.len() > MAX_REFRESH_TOKEN_CHARS {
            return Ok(None);
        }
        if let Some(claims) = self.sessions.key.open(token) {
            return Ok(Some(claims));
        }
        let hash = hash_legacy_refresh_token(token);
        let legacy = legacy_refresh_token::find(&self.db, &hash, now_secs()).await?;
        Ok(legacy.map(|(session_id, generation)| RefreshTokenClaims {
            session_id,
            generation,
        }))
    }

    /// The refresh grant: exchanges `presented` for a new pair and spends it. The access
    /// token gets the `requested` scopes (all granted at login when empty), which must be
    /// among those granted at login, and which the user must still hold.
    ///
    /// Of concurrent refreshes of one token exactly one rotates. Presenting the token just
    /// before the session's current one again, within the reuse interval, answers the
    /// current pair (a client whose concurrent refresh lost the race); any other spent
    /// token ends the session (RFC 9700 §4.14.2).
    pub async fn refresh(
        &self,
        presented: &str,
        requested: &[String],
    ) -> Result<Result<Login, GrantError>, AccountsError> {
        let rules = &self.sessions;
        let Some(lifetime) = rules.refresh_lifetime else {
            return Ok(Err(GrantError::RefreshDisabled));
        };
        let Some(token) = self.presented_refresh(presented).await? else {
            return Ok(Err(GrantError::InvalidGrant));
        };
        let Some(found) = self.live_session(&token.session_id).await? else {
            return Ok(Err(GrantError::InvalidGrant));
        };
        let scope = match refreshed_scope(&found, requested) {
            Ok(scope) => scope,
            Err(e) => return Ok(Err(e)),
        };
        let now = now_secs();
        if token.generation == found.session.generation {
            let rotated = self
                .rotations
                .rotate(Rotation {
                    session_id: found.session.id.clone(),
                    generation: token.generation,
                    now,
                    expires_at: now.saturating_add(secs(lifetime)),
                })
                .await?;
            if rotated {
                let next = rules.key.token(&found.session.id, token.generation + 1);
                let sign_in = SignIn::of(&found.session);
                return self
                    .issue(
                        found.user,
                        scope,
                        Some(&found.session.id),
                        &sign_in,
                        Some(next),
                    )
                    .map(Ok);
            }
        }
        // Spent, maybe a moment ago by a concurrent request: read the session as it is now.
        let Some(found) = self.live_session(&token.session_id).await? else {
            return Ok(Err(GrantError::InvalidGrant));
        };
        let session = &found.session;
        if token.generation >= session.generation {
            // Not one the session has issued: a session ended and refused since.
            return Ok(Err(GrantError::InvalidGrant));
        }
        let interval = secs(rules.reuse_interval);
        let previous = token.generation + 1 == session.generation;
        if previous && interval > 0 && session.rotated_at.is_some_and(|at| now - at <= interval) {
            let current = rules.key.token(&session.id, session.generation);
            let sign_in = SignIn::of(session);
            return self
                .issue(
                    found.user,
                    scope,
                    Some(&found.session.id),
                    &sign_in,
                    Some(current),
                )
                .map(Ok);
        }
        session::end(&self.db, &session.id).await?;
        tracing::warn!(
            user = %found.user.username,
            session = %session.id,
            "spent refresh token presented again: session ended"
        );
        Ok(Err(GrantError::Reused))
    }

    /// Session `session_id` with its user, if it can be refreshed: unexpired, its user
    /// enabled and at the session's `token_version`. A session behind its user's version
    /// (left by a login that raced a revocation) is ended when found.
    async fn live_session(
        &self,
        session_id: &str,
    ) -> Result<Option<SessionWithUser>, AccountsError> {
        let Some((session, user)) = session::find_with_user(&self.db, session_id).await? else {
            return Ok(None);
        };
        if session.token_version != user.token_version {
            session::end(&self.db, &session.id).await?;
            return Ok(None);
        }
        if session.expires_at <= now_secs() || user.disabled {
            return Ok(None);
        }
        Ok(Some(SessionWithUser { session, user }))
    }

    /// RFC 7009: ends the session of `token`, a refresh token or an access token of ours
    /// (`hint` says which to try first). Unknown, expired and already revoked tokens are
    /// no error: the result is the same.
    pub async fn revoke(&self, token: &str, hint: Option<&str>) -> Result<(), AccountsError> {
        let as_access = |accounts: &Self| {
            accounts
                .tokens
                .validate_access_token(token, unix_now())
                .ok()
                .and_then(|claims| claims.sid)
        };
        let as_refresh = async {
            self.presented_refresh(token)
                .await
                .map(|found| found.map(|claims| claims.session_id))
        };
        let session_id = if hint == Some("access_token") {
            match as_access(self) {
                Some(sid) => Some(sid),
                None => as_refresh.await?,
            }
        } else {
            match as_refresh.await? {
                Some(sid) => Some(sid),
                None => as_access(self),
            }
        };
        if let Some(session_id) = session_id {
            if session::end(&self.db, &session_id).await? {
                tracing::info!(session = %session_id, "session revoked");
            }
        }
        Ok(())
    }

    /// The live sessions of `user`, the one of `current` marked.
    pub async fn sessions(
        &self,
        user: &user::Model,
        current: Option<&str>,
    ) -> Result<Vec<SessionInfo>, AccountsError> {
        let sessions = session::list(&self.db, user.id, user.token_version, now_secs()).await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionInfo {
                current: current == Some(s.id.as_str()),
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                client_addr: s.client_addr,
                user_agent: s.user_agent,
            })
            .collect())
    }

    /// Ends `user`'s session `session_id`; `false` if they have no such session.
    pub async fn end_session(
        &self,
        user: &user::Model,
        session_id: &str,
    ) -> Result<bool, AccountsError> {
        Ok(session::end_own(&self.db, user.id, session_id).await?)
    }

    /// Notes that session `session_id`, last used at `last_used_at`, is in use, at most
    /// once a minute and without making the request wait.
    pub(super) fn note_session_use(&self, session_id: &str, last_used_at: i64) {
        let now = now_secs();
        if now - last_used_at < TOUCH_EVERY_SECS {
            return;
        }
        let db = self.db.clone();
        let session_id = session_id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = session::touch(&db, &session_id, now).await {
                tracing::warn!(error = %e, "could not note a session's use");
            }
        });
    }

    /// Deletes expired (and stale) sessions and expired legacy refresh tokens; returns
    /// how many of each.
    pub async fn purge_expired_sessions(&self) -> Result<(u64, u64), AccountsError> {
        let now = now_secs();
        let sessions = session::purge_expired(&self.db, now).await?;
        let legacy = legacy_refresh_token::purge_expired(&self.db, now).await?;
        Ok((sessions, legacy))
    }
}

/// When and how a user signed in (RFC 8176 methods, space separated): what a session
/// keeps, and every token of it carries, refreshed ones included.
#[derive(Debug, Clone)]
pub(super) struct SignIn {
    pub auth_time: i64,
    pub amr: String,
}

impl SignIn {
    /// A sign-in now, with `methods`.
    pub(super) fn now(methods: &Methods) -> Self {
        Self {
            auth_time: now_secs(),
            amr: methods.stored(),
        }
    }

    fn of(session: &session::Model) -> Self {
        Self {
            auth_time: session.auth_time,
            amr: session.amr.clone(),
        }
    }
}

/// A session that may be refreshed, and its user.
struct SessionWithUser {
    session: session::Model,
    user: user::Model,
}

/// The scopes a refreshed access token gets: `requested` (all granted at login when
/// empty), each of which must have been granted at login (RFC 6749 §6), that the user
/// still holds.
fn refreshed_scope(found: &SessionWithUser, requested: &[String]) -> Result<Granted, GrantError> {
    let granted = Granted::stored(&found.session.scope);
    let wanted = if requested.is_empty() {
        granted
    } else {
        let (openid, service): (Vec<&String>, Vec<&String>) = requested
            .iter()
            .partition(|name| OpenIdScopes::is_name(name));
        let scopes = Scopes::strict_list(&service).map_err(|_| GrantError::InvalidScope)?;
        let openid = OpenIdScopes::lenient(
            &openid
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        if scopes.intersection(granted.scopes) != scopes
            || openid.intersection(granted.openid) != openid
        {
            return Err(GrantError::InvalidScope);
        }
        Granted { scopes, openid }
    };
    Ok(Granted {
        scopes: wanted.scopes.intersection(held_scopes(&found.user)),
        openid: wanted.openid,
    })
}
