//! The `users.username_skeleton` column outside a user's creation: recording the keys of
//! users that have none (what the key is: `accounts::usernames`), never taking a key
//! another user holds.

use std::collections::HashSet;

use sea_orm::{
    sea_query::Expr, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    TransactionTrait,
};

use super::{user, Db};

/// Up to `limit` users with no recorded key and an id above `after`, by id: (id, username).
pub async fn unrecorded(db: &Db, after: i32, limit: u64) -> Result<Vec<(i32, String)>, DbErr> {
    user::Entity::find()
        .select_only()
        .columns([user::Column::Id, user::Column::Username])
        .filter(user::Column::UsernameSkeleton.is_null())
        .filter(user::Column::Id.gt(after))
        .order_by_asc(user::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

/// Which of `keys` some user holds already.
pub async fn recorded_among(db: &Db, keys: &[String]) -> Result<HashSet<String>, DbErr> {
    let held: Vec<Option<String>> = user::Entity::find()
        .select_only()
        .column(user::Column::UsernameSkeleton)
        .filter(user::Column::UsernameSkeleton.is_in(keys.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(held.into_iter().flatten().collect())
}

/// Records each user's key, all in one transaction or none: `false` when one of the keys
/// turned out to be held by then (a user created meanwhile), and nothing was recorded.
pub async fn record_all(db: &Db, keys: &[(i32, String)]) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    for (id, key) in keys {
        match record_in(&txn, *id, key).await {
            Ok(()) => {}
            // Dropping the transaction rolls it back.
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    txn.commit().await?;
    Ok(true)
}

/// Records one user's key; `false` when another user holds it.
pub async fn record(db: &Db, id: i32, key: &str) -> Result<bool, DbErr> {
    match record_in(db, id, key).await {
        Ok(()) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn record_in(db: &impl sea_orm::ConnectionTrait, id: i32, key: &str) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::UsernameSkeleton, Expr::value(key))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::UsernameSkeleton.is_null())
        .exec(db)
        .await?;
    Ok(())
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
