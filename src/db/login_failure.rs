//! The `login_failures` table and its queries: failed-login counts in fixed windows,
//! per account, per client address and per account on a known client, shared by every
//! replica on the database.

use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, OnConflict, Query},
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
    /// One account on one known client address (subject `"<address> <account>"`).
    KnownClient,
    /// Signups from one client address (counted whatever their outcome).
    Signup,
    /// Verification and reset mails to one address (subject: the SHA-256 of its key).
    Mail,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Address => "address",
            Scope::KnownClient => "known",
            Scope::Signup => "signup",
            Scope::Mail => "mail",
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

/// Counts one failed login of `subject` at `now` in advance, unless its window, still
/// open (it opened after `open_since`), already holds `max_failures`: the start of the
/// window it was counted in, or `None` when the limit is reached. A window that opened
/// before `open_since` has ended, and the attempt opens a new one.
///
/// One conditional upsert, so that however many logins run at once, on however many
/// replicas, no more than `max_failures` get through a window.
pub async fn reserve(
    db: &impl ConnectionTrait,
    scope: Scope,
    subject: &str,
    now: i64,
    open_since: i64,
    max_failures: u32,
) -> Result<Option<i64>, DbErr> {
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
            Expr::case(still_open.clone(), Expr::col((Entity, Column::WindowStart))).finally(now),
        )
        .action_and_where(
            still_open
                .not()
                .or(Expr::col((Entity, Column::Failures)).lt(i64::from(max_failures))),
        )
        .to_owned();
    let insert = Query::insert()
        .into_table(Entity)
        .columns([
            Column::Scope,
            Column::Subject,
            Column::WindowStart,
            Column::Failures,
        ])
        .values_panic([
            scope.as_str().into(),
            subject.into(),
            now.into(),
            1i64.into(),
        ])
        .on_conflict(on_conflict)
        .returning_col(Column::WindowStart)
        .to_owned();
    let row = db
        .query_one(db.get_database_backend().build(&insert))
        .await?;
    row.map(|row| row.try_get::<i64>("", Column::WindowStart.as_str()))
        .transpose()
}

/// Takes back one attempt [`reserve`]d in the window that started at `window_start` (a
/// login that turned out not to be a failure). A window that has since been replaced is
/// left alone.
pub async fn release(
    db: &DatabaseConnection,
    scope: Scope,
    subject: &str,
    window_start: i64,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Failures, Expr::col(Column::Failures).sub(1))
        .filter(Column::Scope.eq(scope.as_str()))
        .filter(Column::Subject.eq(subject))
        .filter(Column::WindowStart.eq(window_start))
        .filter(Column::Failures.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// The current window of `subject`, if any.
pub async fn window(
    db: &DatabaseConnection,
    scope: Scope,
    subject: &str,
) -> Result<Option<Window>, DbErr> {
    Ok(
        Entity::find_by_id((scope.as_str().to_owned(), subject.to_owned()))
            .one(db)
            .await?
            .map(Window::from),
    )
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
