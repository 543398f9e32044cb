//! The `authorization_codes` table: codes of `GET /authorize` (stored as their SHA-256
//! only, see `auth::email_token`), each bound to its client, redirect URI and PKCE
//! challenge, with the grant it stands for.
//!
//! A code is spent by one conditional `UPDATE ... RETURNING` (unspent, unexpired), which
//! also records the id of the session its exchange will start; so of two exchanges, on
//! one replica or two, exactly one gets it. The loser marks the code `reused` and ends
//! that session; the winner, once its session is stored, checks `reused` and ends it
//! itself. Whichever of the two writes commits last sees the other's, so a session a
//! reused code started never survives (RFC 6749 §4.1.2).

use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, Query},
    ActiveValue::{NotSet, Set},
    FromQueryResult,
};

use super::Db;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorization_codes")]
pub struct Model {
    /// SHA-256 of the code, hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_hash: String,
    pub client_id: String,
    pub user_id: i32,
    /// The user's `token_version` when the code was issued: a change since kills it.
    pub token_version: i64,
    pub redirect_uri: String,
    /// The PKCE `code_challenge` (S256).
    pub code_challenge: String,
    /// The granted scopes, space separated, as a session stores them.
    pub scope: String,
    pub nonce: Option<String>,
    /// When and how the user signed in (Unix seconds; RFC 8176 methods).
    pub auth_time: i64,
    pub amr: String,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
    /// The session the exchange started (set when the code is spent).
    pub session_id: Option<String>,
    /// Presented again after it was spent.
    pub reused: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A code to store.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: i32,
    pub token_version: i64,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub expires_at: i64,
}

pub async fn insert(db: &Db, code: NewCode) -> Result<(), DbErr> {
    let row = ActiveModel {
        code_hash: Set(code.code_hash),
        client_id: Set(code.client_id),
        user_id: Set(code.user_id),
        token_version: Set(code.token_version),
        redirect_uri: Set(code.redirect_uri),
        code_challenge: Set(code.code_challenge),
        scope: Set(code.scope),
        nonce: Set(code.nonce),
        auth_time: Set(code.auth_time),
        amr: Set(code.amr),
        expires_at: Set(code.expires_at),
        spent_at: Set(None),
        session_id: Set(None),
        reused: NotSet,
    };
    Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// What presenting a code found.
#[derive(Debug)]
pub enum Spent {
    /// This request spent it; its exchange starts session `session_id`.
    Spent(Box<Model>),
    /// It was spent before: the session its first exchange started, if any yet.
    AlreadySpent { session_id: Option<String> },
    /// Unknown or expired.
    Unknown,
}

/// Spends the code with `code_hash` at `now` for session `session_id`, in one statement.
pub async fn spend(db: &Db, code_hash: &str, session_id: &str, now: i64) -> Result<Spent, DbErr> {
    let update = Query::update()
        .table(Entity)
        .value(Column::SpentAt, now)
        .value(Column::SessionId, session_id)
        .and_where(Expr::col(Column::CodeHash).eq(code_hash))
        .and_where(Expr::col(Column::SpentAt).is_null())
        .and_where(Expr::col(Column::ExpiresAt).gt(now))
        .returning_all()
        .to_owned();
    let row = db
        .query_one(db.get_database_backend().build(&update))
        .await?;
    if let Some(row) = row {
        return Ok(Spent::Spent(Box::new(Model::from_query_result(&row, "")?)));
    }
    // Not spendable: mark a spent one reused (an expired, unspent one is just unknown).
    let mark = Query::update()
        .table(Entity)
        .value(Column::Reused, true)
        .and_where(Expr::col(Column::CodeHash).eq(code_hash))
        .and_where(Expr::col(Column::SpentAt).is_not_null())
        .returning_all()
        .to_owned();
    let row = db.query_one(db.get_database_backend().build(&mark)).await?;
    Ok(match row {
        Some(row) => Spent::AlreadySpent {
            session_id: Model::from_query_result(&row, "")?.session_id,
        },
        None => Spent::Unknown,
    })
}

/// Whether the code with `code_hash` has been presented again since it was spent.
pub async fn was_reused(db: &Db, code_hash: &str) -> Result<bool, DbErr> {
    Ok(Entity::find_by_id(code_hash)
        .one(db)
        .await?
        .is_some_and(|code| code.reused))
}

/// Deletes codes expired before `before` (spent ones are kept until then, so a reuse is
/// still recognized while the code would have been live).
pub async fn purge_expired(db: &Db, before: i64) -> Result<u64, DbErr> {
    let deleted = Entity::delete_many()
        .filter(Column::ExpiresAt.lte(before))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
