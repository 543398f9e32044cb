//! Changes that must leave some enabled user holding a scope: the admin API may not take
//! `admin` from the last enabled user who holds it, by new scopes, a disable or a delete.
//!
//! The check and the change are one conditional statement, so a change is refused on the
//! very state it would have changed. On SQLite that is enough: a writing statement holds
//! the database's one write lock from its start. On PostgreSQL (read committed) two such
//! statements, each taking the scope from the other of its last two holders, would each
//! still see the other holding it; so there each transaction first locks the rows of every
//! enabled holder, in id order (one order: no deadlock). The second then waits for the
//! first to commit, and its statement sees the first one's change. The users' rows come
//! before the sessions, as in every transaction that changes a user (see `session`), and
//! a transaction PostgreSQL aborts for a conflict is tried again.

use sea_orm::{
    sea_query::{Alias, Expr, IntoIden, LockType, Query, SimpleExpr},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{
    retrying_conflicts, session,
    user::{self, UserChanges},
    Db,
};

/// What a change that keeps a holder of the scope did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptHolder {
    Done,
    NoSuchUser,
    /// Refused: the user is the last enabled one holding the scope.
    LastHolder,
}

/// [`user::change`], unless it would take `scope` (by new scopes or a disable) from
/// the last enabled user holding it.
pub async fn change_user_keeping_holder(
    db: &Db,
    username: &str,
    changes: UserChanges,
    scope: &str,
) -> Result<KeptHolder, DbErr> {
    let takes_scope = changes.disabled == Some(true)
        || changes
            .scopes
            .as_deref()
            .is_some_and(|s| !s.split_whitespace().any(|name| name == scope));
    if !takes_scope {
        return Ok(match user::change(db, username, changes).await? {
            true => KeptHolder::Done,
            false => KeptHolder::NoSuchUser,
        });
    }
    if username.contains('\0') {
        return Ok(KeptHolder::NoSuchUser);
    }
    let (update, revoke) = user::update_statement(username, changes);
    let update = update.filter(another_holder_remains(username, scope));
    retrying_conflicts(db, |txn| {
        let (update, username, scope) = (update.clone(), username.to_owned(), scope.to_owned());
        Box::pin(async move {
            lock_holders(txn, &scope).await?;
            if update.exec(txn).await?.rows_affected == 0 {
                return refused(txn, &username).await;
            }
            // As `user::change` does, after the user's row: no refresh token may outlive
            // the access tokens the bump revoked.
            if revoke {
                session::end_all_of(txn, &username).await?;
            }
            Ok(KeptHolder::Done)
        })
    })
    .await
}

/// [`user::delete`], unless `username` is the last enabled user holding `scope`.
pub async fn delete_user_keeping_holder(
    db: &Db,
    username: &str,
    scope: &str,
) -> Result<KeptHolder, DbErr> {
    if username.contains('\0') {
        return Ok(KeptHolder::NoSuchUser);
    }
    // The check is a write that changes nothing, so that it is the transaction's first
    // write (SQLite) and locks the user's row before the sessions (PostgreSQL).
    let check = user::Entity::update_many()
        .col_expr(
            user::Column::UpdatedAt,
            Expr::col((user::Entity, user::Column::UpdatedAt)).into(),
        )
        .filter(user::Column::Username.eq(username))
        .filter(another_holder_remains(username, scope));
    retrying_conflicts(db, |txn| {
        let (check, username, scope) = (check.clone(), username.to_owned(), scope.to_owned());
        Box::pin(async move {
            lock_holders(txn, &scope).await?;
            if check.exec(txn).await?.rows_affected == 0 {
                return refused(txn, &username).await;
            }
            // As `user::delete` does: the sessions before the row, not by the cascade.
            session::end_all_of(txn, &username).await?;
            user::Entity::delete_many()
                .filter(user::Column::Username.eq(&username))
                .exec(txn)
                .await?;
            Ok(KeptHolder::Done)
        })
    })
    .await
}

/// On PostgreSQL, locks the rows of every enabled user holding `scope` until the
/// transaction ends. Not on SQLite: a read first would make the transaction a reader that
/// must then upgrade, which fails when another writer came in between; its first write
/// takes the one write lock instead.
async fn lock_holders(txn: &DatabaseTransaction, scope: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        // NO KEY UPDATE: it excludes another such lock, not a login's key-share lock on
        // its user's row.
        user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(enabled_holder(scope))
            .order_by_asc(user::Column::Id)
            .lock(LockType::NoKeyUpdate)
            .into_tuple::<i32>()
            .all(txn)
            .await?;
    }
    Ok(())
}

/// The guarded statement changed nothing: the user is missing, or is the last holder.
/// Nothing was written, so the transaction may as well commit.
async fn refused(txn: &DatabaseTransaction, username: &str) -> Result<KeptHolder, DbErr> {
    let exists = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(txn)
        .await?
        .is_some();
    Ok(match exists {
        true => KeptHolder::LastHolder,
        false => KeptHolder::NoSuchUser,
    })
}

/// The `scopes` column (of `table`) names `scope`. gatehouse writes it as names between
/// single spaces.
fn names(table: impl IntoIden, scope: &str) -> SimpleExpr {
    let table = table.into_iden();
    let column = || Expr::col((table.clone(), user::Column::Scopes));
    column()
        .eq(scope)
        .or(column().like(format!("{scope} %")))
        .or(column().like(format!("% {scope}")))
        .or(column().like(format!("% {scope} %")))
}

/// The row is enabled and holds `scope`.
fn enabled_holder(scope: &str) -> SimpleExpr {
    Expr::col((user::Entity, user::Column::Disabled))
        .eq(false)
        .and(names(user::Entity, scope))
}

/// The statement's row (`username`'s) is not an enabled holder of `scope`, or another
/// enabled user holds it.
fn another_holder_remains(username: &str, scope: &str) -> SimpleExpr {
    let other = Alias::new("other");
    let another = Query::select()
        .expr(Expr::val(1))
        .from_as(user::Entity, other.clone())
        .and_where(Expr::col((other.clone(), user::Column::Username)).ne(username))
        .and_where(Expr::col((other.clone(), user::Column::Disabled)).eq(false))
        .and_where(names(other, scope))
        .to_owned();
    enabled_holder(scope).not().or(Expr::exists(another))
}
