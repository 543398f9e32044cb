//! Sessions and refresh tokens (SPEC §7): what a password login starts, the refresh grant
//! with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2), revocation
//! (RFC 7009), and the caller's own list of sessions.
//!
//! Every decision between concurrent requests is taken by the database (a conditional
//! update in `db::group_commit`), never by a lock in this process, so replicas sharing
//! the database agree.

use std::{net::IpAddr, time::Duration};

use super::{held_scopes, Accounts, AccountsError, Login, Scopes};
use crate::{
    auth::{
        refresh_token::{hash_refresh_token, new_session_id, RefreshTokenKey},
        token::unix_now,
    },
    db::{
        self,
        session::{self, NewRefreshToken, PresentedRefresh, Rotation},
        user,
    },
};

/// Default of `REFRESH_TOKEN_EXPIRE_DAYS`.
pub const DEFAULT_REFRESH_TOKEN_EXPIRE_DAYS: u64 = 14;
/// Default of `REFRESH_REUSE_INTERVAL_SECS`: a spent refresh token is never accepted again.
pub const DEFAULT_REFRESH_REUSE_INTERVAL_SECS: u64 = 0;
/// Default of `MAX_SESSIONS_PER_USER`.
pub const DEFAULT_MAX_SESSIONS_PER_USER: u64 = 100;
/// Longest refresh token looked up; ours are 43 characters.
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
    /// How long a spent refresh token may still be presented, answering the session's
    /// current one; zero: a spent token presented again ends the session.
    pub reuse_interval: Duration,
    /// Live sessions per user; a login beyond it ends the user's oldest.
    pub max_per_user: u64,
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
}

fn now_secs() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Accounts {
    /// Starts a session for `user` (just logged in) with `scope`, and issues its first
    /// access token and, unless disabled, refresh token.
    pub(super) async fn start_session(
        &self,
        user: user::Model,
        scope: Scopes,
        origin: &Origin,
    ) -> Result<Login, AccountsError> {
        let rules = &self.sessions;
        let now = now_secs();
        let id = new_session_id();
        let access_expires =
            now.saturating_add(i64::try_from(self.tokens.lifetime_secs()).unwrap_or(i64::MAX));
        let refresh = rules.refresh_lifetime.map(|lifetime| {
            let token = rules.key.token(&id, 0);
            let stored = NewRefreshToken {
                token_hash: hash_refresh_token(&token),
                expires_at: now.saturating_add(secs(lifetime)),
            };
            (token, stored)
        });
        let record = session::Model {
            id: id.clone(),
            user_id: user.id,
            scope: scope.to_string(),
            generation: 0,
            created_at: now,
            last_used_at: now,
            expires_at: refresh
                .as_ref()
                .map_or(access_expires, |(_, s)| s.expires_at.max(access_expires)),
            client_addr: origin.client.map(|ip| ip.to_string()),
            user_agent: origin
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
        };
        let (refresh_token, stored) = refresh.unzip();
        if let Err(e) = session::start(&self.db, record, stored, rules.max_per_user).await {
            // A database that serves reads but refuses writes (read-only, locked, full)
            // still lets users in, as before sessions existed: with an access token outside
            // any session (its user's token_version still revokes it) and no refresh token.
            tracing::warn!(error = %e, user = %user.username, "could not store a session: access token without one");
            let access_token = self.tokens.issue_access_token(
                &user.username,
                user.id,
                user.token_version,
                &scope.to_string(),
                unix_now(),
            )?;
            return Ok(Login {
                user,
                access_token,
                refresh_token: None,
                scope,
                expires_in: self.tokens.lifetime_secs(),
            });
        }
        self.issue_pair(user, scope, &id, refresh_token)
    }

    fn issue_pair(
        &self,
        user: user::Model,
        scope: Scopes,
        session_id: &str,
        refresh_token: Option<String>,
    ) -> Result<Login, AccountsError> {
        let access_token = self.tokens.issue_session_access_token(
            &user.username,
            user.id,
            user.token_version,
            &scope.to_string(),
            session_id,
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

    /// The refresh grant: exchanges `presented` for a new pair and spends it. The access
    /// token gets the `requested` scopes (all granted at login when empty), which must be
    /// among those granted at login, and which the user must still hold.
    ///
    /// Of concurrent refreshes of one token exactly one rotates. The others, like any
    /// later presentation of a spent token, get the session's current pair within the
    /// reuse interval, and past it end the session (RFC 9700 §4.14.2).
    pub async fn refresh(
        &self,
        presented: &str,
        requested: &[String],
    ) -> Result<Result<Login, GrantError>, AccountsError> {
        let rules = &self.sessions;
        let Some(lifetime) = rules.refresh_lifetime else {
            return Ok(Err(GrantError::RefreshDisabled));
        };
        if presented.is_empty() || presented.chars().count() > MAX_REFRESH_TOKEN_CHARS {
            return Ok(Err(GrantError::InvalidGrant));
        }
        let hash = hash_refresh_token(presented);
        let Some(found) = session::find_refresh_token(&self.db, &hash).await? else {
            return Ok(Err(GrantError::InvalidGrant));
        };
        let now = now_secs();
        if found.token.expires_at <= now || found.user.disabled {
            return Ok(Err(GrantError::InvalidGrant));
        }
        let scope = match refreshed_scope(&found, requested) {
            Ok(scope) => scope,
            Err(e) => return Ok(Err(e)),
        };
        if found.token.spent_at.is_none() {
            let generation = found.session.generation + 1;
            let token = rules.key.token(&found.session.id, generation);
            let rotated = self
                .rotations
                .rotate(Rotation {
                    session_id: found.session.id.clone(),
                    spent_hash: hash.clone(),
                    next: NewRefreshToken {
                        token_hash: hash_refresh_token(&token),
                        expires_at: now.saturating_add(secs(lifetime)),
                    },
                    generation,
                    now,
                })
                .await?;
            if rotated {
                return self
                    .issue_pair(found.user, scope, &found.session.id, Some(token))
                    .map(Ok);
            }
        }
        // Spent, maybe a moment ago by a concurrent request: read it as it is now.
        let Some(found) = session::find_refresh_token(&self.db, &hash).await? else {
            return Ok(Err(GrantError::InvalidGrant));
        };
        let spent_at = found.token.spent_at.unwrap_or(now);
        let interval = secs(rules.reuse_interval);
        if interval > 0 && now - spent_at <= interval {
            let current = rules.key.token(&found.session.id, found.session.generation);
            return self
                .issue_pair(found.user, scope, &found.session.id, Some(current))
                .map(Ok);
        }
        session::end(&self.db, &found.session.id).await?;
        tracing::warn!(
            user = %found.user.username,
            session = %found.session.id,
            "spent refresh token presented again: session ended"
        );
        Ok(Err(GrantError::Reused))
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
            if token.chars().count() > MAX_REFRESH_TOKEN_CHARS {
                return Ok(None);
            }
            session::find_refresh_token(&self.db, &hash_refresh_token(token))
                .await
                .map(|found| found.map(|f| f.session.id))
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
        let sessions = session::list(&self.db, user.id, now_secs()).await?;
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

    /// Deletes expired sessions and refresh tokens; returns how many of each.
    pub async fn purge_expired_sessions(&self) -> Result<(u64, u64), AccountsError> {
        Ok(db::session::purge_expired(&self.db, now_secs()).await?)
    }
}

/// The scopes a refreshed access token gets: `requested` (all granted at login when
/// empty), each of which must have been granted at login (RFC 6749 §6), that the user
/// still holds.
fn refreshed_scope(found: &PresentedRefresh, requested: &[String]) -> Result<Scopes, GrantError> {
    let granted = Scopes::lenient(&found.session.scope);
    let wanted = if requested.is_empty() {
        granted
    } else {
        let wanted = Scopes::strict_list(requested).map_err(|_| GrantError::InvalidScope)?;
        if wanted.intersection(granted) != wanted {
            return Err(GrantError::InvalidScope);
        }
        wanted
    };
    Ok(wanted.intersection(held_scopes(&found.user)))
}
