//! The `mail_outbox` table: every mail gatehouse sends, written in the transaction of the
//! change that causes it, so a mail exists exactly when its change committed; the
//! senders of every replica deliver from it (see `mail::sender`).
//!
//! A sender claims due rows with one statement for both backends:
//! `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) AND <still due> RETURNING`.
//! On PostgreSQL the subquery skips rows another replica is claiming, and the repeated
//! condition drops a row that was claimed while this statement waited for it (without
//! both, replicas claiming together send some mails twice); SQLite serializes writers and
//! ignores the lock clause. A claim is a lease: it moves `next_attempt_at` past the
//! longest a delivery can take, so a row claimed by a process that died becomes due again
//! by itself, and nothing about a delivery is held in memory. A delivery's outcome is
//! written only while the claim is still the sender's own.

use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, Func, LockBehavior, LockType, Order, Query},
    ActiveValue::{NotSet, Set},
    FromQueryResult, QuerySelect,
};

use super::Db;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The address, as the mail names it.
    pub recipient: String,
    /// What the mail is for (`verify`, `reset`), for the log.
    pub kind: String,
    /// The whole RFC 5322 message; `None` once delivered (it holds a token).
    pub message: Option<String>,
    /// Unix seconds, as are `next_attempt_at` and `delivered_at`.
    pub created_at: i64,
    /// Delivery attempts so far, the one in progress included.
    pub attempts: i32,
    /// When the mail is due; while claimed, when the claim lapses.
    pub next_attempt_at: i64,
    /// The claim in progress, if any.
    pub claimed_by: Option<String>,
    /// What the relay answered, or why it could not be reached, at the last failure.
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A mail claimed for delivery.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Claimed {
    pub id: i32,
    pub recipient: String,
    pub kind: String,
    pub message: Option<String>,
    pub attempts: i32,
}

/// Adds a mail, due at once; `db` is the transaction of the change that causes it.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    recipient: &str,
    kind: &str,
    message: String,
    now: i64,
) -> Result<(), DbErr> {
    let row = ActiveModel {
        id: NotSet,
        recipient: Set(recipient.to_owned()),
        kind: Set(kind.to_owned()),
        message: Set(Some(message)),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claimed_by: Set(None),
        last_error: Set(None),
        delivered_at: Set(None),
    };
    Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Claims up to `limit` mails due at `now` for `claim` until `now + lease_secs`, oldest
/// due first, counting the attempt.
pub async fn claim(
    db: &Db,
    claim: &str,
    now: i64,
    lease_secs: i64,
    limit: u64,
) -> Result<Vec<Claimed>, DbErr> {
    let due = Expr::col(Column::DeliveredAt)
        .is_null()
        .and(Expr::col(Column::NextAttemptAt).lte(now));
    let pick = Query::select()
        .column(Column::Id)
        .from(Entity)
        .cond_where(due.clone())
        .order_by(Column::NextAttemptAt, Order::Asc)
        .order_by(Column::Id, Order::Asc)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let update = Query::update()
        .table(Entity)
        .value(Column::NextAttemptAt, now.saturating_add(lease_secs))
        .value(Column::ClaimedBy, claim)
        .value(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .and_where(Expr::col(Column::Id).in_subquery(pick))
        .cond_where(due)
        .returning(Query::returning().columns([
            Column::Id,
            Column::Recipient,
            Column::Kind,
            Column::Message,
            Column::Attempts,
        ]))
        .to_owned();
    let rows = db
        .query_all(db.get_database_backend().build(&update))
        .await?;
    rows.iter()
        .map(|row| Claimed::from_query_result(row, ""))
        .collect()
}

/// The mail was delivered: forget its text, keep the row a while (see [`purge_delivered`]).
pub async fn delivered(db: &Db, id: i32, claim: &str, now: i64) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::DeliveredAt, Expr::value(now))
        .col_expr(Column::Message, Expr::value(Option::<String>::None))
        .col_expr(Column::ClaimedBy, Expr::value(Option::<String>::None))
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .filter(Column::Id.eq(id))
        .filter(Column::ClaimedBy.eq(claim))
        .exec(db)
        .await?;
    Ok(())
}

/// The attempt failed with `error`: due again at `retry_at`.
pub async fn failed(
    db: &Db,
    id: i32,
    claim: &str,
    retry_at: i64,
    error: &str,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::NextAttemptAt, Expr::value(retry_at))
        .col_expr(Column::ClaimedBy, Expr::value(Option::<String>::None))
        .col_expr(Column::LastError, Expr::value(error))
        .filter(Column::Id.eq(id))
        .filter(Column::ClaimedBy.eq(claim))
        .exec(db)
        .await?;
    Ok(())
}

/// When the next undelivered mail is due (or its claim lapses), if there is one.
pub async fn next_due(db: &Db) -> Result<Option<i64>, DbErr> {
    let earliest: Option<Option<i64>> = Entity::find()
        .select_only()
        .expr(Func::min(Expr::col(Column::NextAttemptAt)))
        .filter(Column::DeliveredAt.is_null())
        .into_tuple()
        .one(db)
        .await?;
    Ok(earliest.flatten())
}

/// Deletes mails delivered before `cutoff`; returns how many.
pub async fn purge_delivered(db: &Db, cutoff: i64) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::DeliveredAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
