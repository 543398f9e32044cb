//! Who a bearer token speaks for, checked against the database on every request.

use super::{Accounts, AccountsError};
use crate::{
    auth::token::unix_now,
    db::{self, session, user},
};

/// The user a valid bearer token speaks for, and the session it belongs to.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: user::Model,
    /// `None` for a token issued before gatehouse had sessions.
    pub session_id: Option<String>,
}

impl Accounts {
    /// The active user `token` was issued to: the token must validate, name an existing
    /// user, carry that user's id (`uid`: a user deleted and re-created under the same name
    /// is another user) and current `token_version` (a password change, a disable or a
    /// revoke bumps it), and belong to a live session of theirs (the user and the session
    /// are read in one query). A disabled user is [`AccountsError::InactiveUser`], as in
    /// the tutorial. The token must also carry every `required` scope, and the user still
    /// hold it ([`AccountsError::InsufficientScope`]), checked before the disable as
    /// FastAPI does.
    pub async fn current_user(
        &self,
        token: &str,
        required: &[&str],
    ) -> Result<CurrentUser, AccountsError> {
        let claims = self
            .tokens
            .validate_access_token(token, unix_now())
            .map_err(|e| {
                tracing::debug!(error = %e, "bearer token rejected");
                AccountsError::InvalidToken
            })?;
        let user = match &claims.sid {
            Some(sid) => {
                let (user, last_used_at) =
                    session::find_user_in_session(&self.db, &claims.sub, sid)
                        .await?
                        .ok_or(AccountsError::InvalidToken)?;
                self.note_session_use(sid, last_used_at);
                user
            }
            None => db::find_user(&self.db, &claims.sub)
                .await?
                .ok_or(AccountsError::InvalidToken)?,
        };
        // Ids are never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL). Tokens
        // without `uid` predate it and are refused: they expire within the token lifetime.
        if claims.uid != Some(user.id) || user.token_version != claims.ver {
            return Err(AccountsError::InvalidToken);
        }
        if !self
            .usable_scopes(&user, claims.scope.as_deref())
            .contains_names(required)
        {
            return Err(AccountsError::InsufficientScope);
        }
        if user.disabled {
            return Err(AccountsError::InactiveUser);
        }
        Ok(CurrentUser {
            user,
            session_id: claims.sid,
        })
    }
}
