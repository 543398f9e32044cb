//! The `login_failures` table and its queries: failed-login counts in fixed windows,
//! per account and per client address, shared by every replica on the database.

use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, OnConflict},
    ActiveValue::Set,
    Condition,
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_failures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    pub window_start: i64,
    pub failures: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// What a count is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Account,
    Address,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Address => "address",
        }
    }
}

/// The failures counted in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Unix seconds.
    pub started_at: i64,
    pub failures: i64,
}

impl From<Model> for Window {
    fn from(row: Model) -> Self {
        Window {
            started_at: row.window_start,
            failures: row.failures,
        }
    }
}

/// The current windows of an account and an address, in one query.
pub async fn windows(
    db: &DatabaseConnection,
    account: &str,
    address: &str,
) -> Result<(Option<Window>, Option<Window>), DbErr> {
    let key = |scope: Scope, subject: &str| {
        Condition::all()
            .add(Column::Scope.eq(scope.as_str()))
            .add(Column::Subject.eq(subject))
    };
    let rows = Entity::find()
        .filter(
            Condition::any()
                .add(key(Scope::Account, account))
                .add(key(Scope::Address, address)),
        )
        .all(db)
        .await?;
    let mut found = (None, None);
    for row in rows {
        if row.scope == Scope::Account.as_str() && row.subject == account {
            found.0 = Some(row.into());
        } else if row.scope == Scope::Address.as_str() && row.subject == address {
            found.1 = Some(row.into());
        }
    }
    Ok(found)
}

/// Counts one failure of `subject` at `now`; a window that opened before `open_since`
/// has ended, and the failure opens a new one. One statement, so concurrent failures on
/// any replica are all counted.
pub async fn record_failure(
    db: &DatabaseConnection,
    scope: Scope,
    subject: &str,
    now: i64,
    open_since: i64,
) -> Result<(), DbErr> {
    let row = ActiveModel {
        scope: Set(scope.as_str().to_owned()),
        subject: Set(subject.to_owned()),
        window_start: Set(now),
        failures: Set(1),
    };
    let still_open = Expr::col((Entity, Column::WindowStart)).gt(open_since);
    let on_conflict = OnConflict::columns([Column::Scope, Column::Subject])
        .value(
            Column::Failures,
            Expr::case(
                still_open.clone(),
                Expr::col((Entity, Column::Failures)).add(1),
            )
            .finally(1),
        )
        .value(
            Column::WindowStart,
            Expr::case(still_open, Expr::col((Entity, Column::WindowStart))).finally(now),
        )
        .to_owned();
    Entity::insert(row)
        .on_conflict(on_conflict)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Forgets the failures of `subject` (an account that just logged in).
pub async fn clear(db: &DatabaseConnection, scope: Scope, subject: &str) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::Scope.eq(scope.as_str()))
        .filter(Column::Subject.eq(subject))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes windows that opened before `cutoff`; returns how many.
pub async fn purge_before(db: &DatabaseConnection, cutoff: i64) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::WindowStart.lt(cutoff))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
