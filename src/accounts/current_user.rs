//! Who a bearer token speaks for, checked against the database on every request, and what
//! introspection (RFC 7662) tells another service about a token.

use super::{Accounts, AccountsError, Scope};
use crate::{auth::token::Claims, db::user};

/// The user a valid bearer token speaks for, and how they signed in.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: user::Model,
    pub signed_in: SignedIn,
}

/// The sign-in a bearer token comes from: its session, when, and how.
#[derive(Debug, Clone, Default)]
pub struct SignedIn {
    /// `None` for a token issued before gatehouse had sessions.
    pub session_id: Option<String>,
    /// When the user signed in; `None` for a token issued before gatehouse recorded it.
    pub auth_time: Option<u64>,
    /// RFC 8176 methods of the sign-in (`pwd`, `otp`).
    pub amr: Vec<String>,
}

impl SignedIn {
    /// Whether the sign-in used `method` (an RFC 8176 name).
    pub fn has_method(&self, method: &str) -> bool {
        self.amr.iter().any(|m| m == method)
    }
}

/// What an active token is, for `POST /introspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// The username.
    pub sub: String,
    /// The scopes the token may use now: those it carries that its user still holds.
    pub scope: String,
    pub exp: u64,
    pub iat: Option<u64>,
    /// The session; `None` for a token issued before gatehouse had sessions.
    pub sid: Option<String>,
}

impl Accounts {
    /// The claims of `token` and the user it names, if it validates and is still that
    /// user's: it carries the user's id (`uid`: a user deleted and re-created under the
    /// same name is another user) and current `token_version` (a password change, a
    /// disable or a revoke bumps it), and belongs to a live session of theirs (the user and
    /// the session are read in one query).
    pub(super) async fn token_user(
        &self,
        token: &str,
    ) -> Result<(Claims, user::Model), AccountsError> {
        let claims = self.validate_token(token).await.map_err(|e| {
            tracing::debug!(error = %e, "bearer token rejected");
            AccountsError::InvalidToken
        })?;
        let user = match &claims.sid {
            Some(sid) => {
                let (user, last_used_at) = self
                    .reads
                    .user_in_session(&claims.sub, sid)
                    .await?
                    .ok_or(AccountsError::InvalidToken)?;
                self.note_session_use(sid, last_used_at);
                user
            }
            None => self
                .reads
                .user(&claims.sub)
                .await?
                .ok_or(AccountsError::InvalidToken)?,
        };
        // Ids are never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL). Tokens
        // without `uid` predate it and are refused: they expire within the token lifetime.
        if claims.uid != Some(user.id) || user.token_version != claims.ver {
            return Err(AccountsError::InvalidToken);
        }
        Ok((claims, user))
    }

    /// The active user `token` was issued to (see `token_user`). A disabled user is
    /// [`AccountsError::InactiveUser`], as in the tutorial. The token must also carry every
    /// `required` scope, and the user still hold it ([`AccountsError::InsufficientScope`]),
    /// checked before the disable as FastAPI does. With `REQUIRE_MFA_FOR_ADMIN`, an
    /// operation requiring `admin` also needs a sign-in with the second factor
    /// ([`AccountsError::StepUpRequired`]).
    pub async fn current_user(
        &self,
        token: &str,
        required: &[&str],
    ) -> Result<CurrentUser, AccountsError> {
        let (claims, user) = self.token_user(token).await?;
        if !self
            .usable_scopes(&user, claims.scope.as_deref())
            .contains_names(required)
        {
            return Err(AccountsError::InsufficientScope);
        }
        if user.disabled {
            return Err(AccountsError::InactiveUser);
        }
        let signed_in = SignedIn {
            session_id: claims.sid,
            auth_time: claims.auth_time,
            amr: claims.amr,
        };
        if required.contains(&Scope::Admin.name()) {
            self.require_factor_for_admin(&signed_in)?;
        }
        Ok(CurrentUser { user, signed_in })
    }

    /// What `token` is, if it is active now: it would be accepted by a protected
    /// operation of this service (its user enabled, its session live, nothing revoked),
    /// read from the database as of this request, so a revocation shows at once. `None`
    /// for any other token.
    pub async fn introspect(&self, token: &str) -> Result<Option<Introspection>, AccountsError> {
        let (claims, user) = match self.token_user(token).await {
            Ok(found) => found,
            Err(AccountsError::InvalidToken) => return Ok(None),
            Err(e) => return Err(e),
        };
        if user.disabled {
            return Ok(None);
        }
        Ok(Some(Introspection {
            scope: self
                .usable_scopes(&user, claims.scope.as_deref())
                .to_string(),
            sub: claims.sub,
            exp: claims.exp,
            iat: claims.iat,
            sid: claims.sid,
        }))
    }
}
