//! The `email_tokens` table: the links of verification and reset mails, stored as their
//! SHA-256 only (what a token is: `auth::email_token`), and the two transactions that
//! spend one.
//!
//! A token is spent by one conditional `UPDATE ... RETURNING` (unused, unexpired), so two
//! requests presenting it, on one replica or two, never both get it. The change it
//! authorizes runs in the same transaction and is conditional too: a verification only
//! while the user still has the address it was sent to; a reset only while the user's
//! `token_version` is the one the token was issued at, so any other password change (or
//! a disable, or an earlier reset) kills every reset token issued before it.

use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, Query},
    FromQueryResult, TransactionTrait,
};

use super::{session, user, Db};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// SHA-256 of the token, hex.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// `verify` or `reset` ([`Kind`]).
    pub kind: String,
    pub user_id: i32,
    /// The key (`users.email_key`) of the address the mail went to: the one a
    /// verification proves.
    pub email_key: String,
    /// The user's `token_version` when the token was issued (a reset needs it unchanged).
    pub token_version: i64,
    /// Unix seconds, as are the next two.
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Verify,
    Reset,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Verify => "verify",
            Kind::Reset => "reset",
        }
    }
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewEmailToken {
    pub token_hash: String,
    pub kind: Kind,
    pub user_id: i32,
    pub email_key: String,
    pub token_version: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(db: &impl ConnectionTrait, token: NewEmailToken) -> Result<(), DbErr> {
    let row = ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        token_hash: sea_orm::ActiveValue::Set(token.token_hash),
        kind: sea_orm::ActiveValue::Set(token.kind.as_str().to_owned()),
        user_id: sea_orm::ActiveValue::Set(token.user_id),
        email_key: sea_orm::ActiveValue::Set(token.email_key),
        token_version: sea_orm::ActiveValue::Set(token.token_version),
        created_at: sea_orm::ActiveValue::Set(token.created_at),
        expires_at: sea_orm::ActiveValue::Set(token.expires_at),
        used_at: sea_orm::ActiveValue::Set(None),
    };
    Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// The unused, unexpired token of `kind` with `token_hash` at `now`, without spending it
/// (the page a link opens; a GET never spends).
pub async fn find_live(
    db: &Db,
    kind: Kind,
    token_hash: &str,
    now: i64,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TokenHash.eq(token_hash))
        .filter(Column::Kind.eq(kind.as_str()))
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .one(db)
        .await
}

/// Marks the token used if it is live at `now`, in one statement; the token, or `None`
/// when it is unknown, used or expired (or another request spent it first).
async fn spend(
    db: &impl ConnectionTrait,
    kind: Kind,
    token_hash: &str,
    now: i64,
) -> Result<Option<Model>, DbErr> {
    let update = Query::update()
        .table(Entity)
        .value(Column::UsedAt, now)
        .and_where(Expr::col(Column::TokenHash).eq(token_hash))
        .and_where(Expr::col(Column::Kind).eq(kind.as_str()))
        .and_where(Expr::col(Column::UsedAt).is_null())
        .and_where(Expr::col(Column::ExpiresAt).gt(now))
        .returning_all()
        .to_owned();
    let row = db
        .query_one(db.get_database_backend().build(&update))
        .await?;
    row.map(|row| Model::from_query_result(&row, ""))
        .transpose()
}

/// Spends a verification token and marks its address verified, if the user still has
/// it. Returns the
/// user's id, or `None` for a token that is not live or whose address the user no longer
/// has.
pub async fn verify_email(db: &Db, token_hash: &str, now: i64) -> Result<Option<i32>, DbErr> {
    let txn = db.begin().await?;
    let Some(token) = spend(&txn, Kind::Verify, token_hash, now).await? else {
        return Ok(None);
    };
    let verified = user::Entity::update_many()
        .col_expr(user::Column::EmailVerified, Expr::value(true))
        .filter(user::Column::Id.eq(token.user_id))
        .filter(user::Column::EmailKey.eq(token.email_key))
        .exec(&txn)
        .await?;
    if verified.rows_affected == 0 {
        // Spent all the same: the address it proves is no longer the user's.
        txn.commit().await?;
        return Ok(None);
    }
    txn.commit().await?;
    Ok(Some(token.user_id))
}

/// Spends a reset token and sets `hashed_password`, if the user is enabled and their
/// `token_version` is still the token's: bumps it (every access token, session and
/// earlier reset token of the user dies), ends every session, and marks the address
/// verified when it is still the one the mail went to. Returns the username, or `None`
/// for a token that is not live or dead by now. Changes nothing else about the user.
pub async fn reset_password(
    db: &Db,
    token_hash: &str,
    hashed_password: String,
    now: i64,
) -> Result<Option<String>, DbErr> {
    let txn = db.begin().await?;
    let Some(token) = spend(&txn, Kind::Reset, token_hash, now).await? else {
        return Ok(None);
    };
    let mail_went_to = Expr::col(user::Column::EmailKey).eq(token.email_key);
    let changed = Query::update()
        .table(user::Entity)
        .value(user::Column::HashedPassword, hashed_password)
        .value(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        )
        .value(
            user::Column::EmailVerified,
            Expr::case(mail_went_to, true).finally(Expr::col(user::Column::EmailVerified)),
        )
        .value(user::Column::UpdatedAt, chrono::Utc::now())
        .and_where(Expr::col(user::Column::Id).eq(token.user_id))
        .and_where(Expr::col(user::Column::TokenVersion).eq(token.token_version))
        .and_where(Expr::col(user::Column::Disabled).eq(false))
        .returning_col(user::Column::Username)
        .to_owned();
    let row = txn
        .query_one(txn.get_database_backend().build(&changed))
        .await?;
    let Some(row) = row else {
        // Spent all the same: it was dead.
        txn.commit().await?;
        return Ok(None);
    };
    let username: String = row.try_get("", user::Column::Username.as_str())?;
    // The user's row first, then the sessions (see `session`'s lock order).
    session::end_all_of(&txn, &username).await?;
    txn.commit().await?;
    Ok(Some(username))
}

/// Deletes tokens that expired before `cutoff`; returns how many.
pub async fn purge_expired(db: &Db, cutoff: i64) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::ExpiresAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
