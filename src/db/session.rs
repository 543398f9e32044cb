//! The `sessions` table and its queries.
//!
//! Ending a session deletes its row: the bearer check joins the session with the user,
//! so its access tokens stop working at once. A session records its user's
//! `token_version` when it starts and counts as live only while the two agree, so a login
//! that raced a password change, a disable or a revoke never yields a live session.
//! Every check that decides between two concurrent requests is one conditional statement
//! in the database, never a lock in this process: replicas share only the database.
//!
//! Lock order (PostgreSQL): a statement that locks several sessions locks them in `id`
//! order (`delete_locked`, `group_commit`), and a transaction that changes a user locks
//! the user's row before its sessions. Rotations, revocations, evictions and purges
//! therefore never wait for each other in a circle.

use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, Func, LockType, Query, SelectStatement, SimpleExpr},
    Condition, DbBackend, FromQueryResult, JoinType, Order, QueryOrder, QuerySelect, QueryTrait,
    SqlErr, Statement,
};

use super::{
    built_once::{built_once, BuiltOnce},
    user,
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// 128 random bits, base64url; carried by access tokens as `sid`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: i32,
    /// The user's `token_version` when the session started; the session is dead once the
    /// user's moves on.
    pub token_version: i64,
    /// The session's place among its user's logins (1, 2, ...): the oldest has the lowest.
    pub seq: i64,
    /// The scopes granted at login, space separated.
    pub scope: String,
    /// Rotations so far; the current refresh token carries it.
    pub generation: i64,
    /// Unix seconds, as are the next three.
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    /// When the current refresh token was issued by a rotation; `None` before the first.
    pub rotated_at: Option<i64>,
    /// When the user signed in (Unix seconds) and how: RFC 8176 methods, space separated
    /// (`pwd`, `pwd otp`). Every token of the session carries both.
    pub auth_time: i64,
    pub amr: String,
    /// As first seen, at login.
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// A session to start.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user_id: i32,
    /// The user's `token_version` as read by the login's password check.
    pub token_version: i64,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// When the user signed in: the login's time, or the browser sign-in's that a code
    /// stands for.
    pub auth_time: i64,
    /// How the user signed in (see [`Model::amr`]).
    pub amr: String,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

/// What [`start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Started,
    /// The user's `token_version` is no longer the login's (a password change, a disable
    /// or a revoke committed while the password was checked), or the user is gone: no
    /// session was stored.
    UserChanged,
}

/// How often [`start`] retries when a concurrent login of the same user took its `seq`.
const SEQ_ATTEMPTS: usize = 8;

/// Stores `session` if its user's `token_version` is still the login's, then ends the
/// user's oldest sessions beyond `max_live`.
///
/// One conditional `INSERT ... SELECT`: the version check and the insert cannot be split
/// by a revocation on any replica. Autocommit statements, no transaction: on SQLite a
/// transaction that fails for a full disk can stay open on its pooled connection and hold
/// the write lock, so that every later write waits out the busy timeout.
pub async fn start(
    db: &DatabaseConnection,
    session: NewSession,
    max_live: u64,
) -> Result<Started, DbErr> {
    let insert = insert_if_current(&session);
    let backend = db.get_database_backend();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match db.execute(backend.build(&insert)).await {
            Ok(done) if done.rows_affected() == 0 => return Ok(Started::UserChanged),
            Ok(_) => break,
            // PostgreSQL: a concurrent login of this user committed the same `seq` first.
            Err(e)
                if attempt < SEQ_ATTEMPTS
                    && matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
    // Past the newest `max_live` by `seq`: the session just stored is never among them
    // unless a later login of the same user is.
    let beyond = Query::select()
        .column(Column::Id)
        .from(Entity)
        .and_where(Column::UserId.eq(session.user_id))
        .order_by(Column::Seq, Order::Desc)
        // SQLite has no `OFFSET` without `LIMIT`.
        .limit(u64::try_from(i64::MAX).unwrap_or(u64::MAX))
        .offset(max_live)
        .to_owned();
    delete_locked(db, Condition::all().add(Column::Id.in_subquery(beyond))).await?;
    Ok(Started::Started)
}

/// `INSERT INTO sessions (...) SELECT ... FROM users WHERE id = ? AND token_version = ?`,
/// numbered one past the user's newest session.
fn insert_if_current(session: &NewSession) -> sea_orm::sea_query::InsertStatement {
    let next_seq = Query::select()
        .expr(Func::coalesce([
            Expr::col(Column::Seq).max(),
            Expr::val(0).into(),
        ]))
        .from(Entity)
        .and_where(Column::UserId.eq(session.user_id))
        .to_owned();
    let values = Query::select()
        .expr(Expr::val(session.id.clone()))
        .expr(Expr::col((user::Entity, user::Column::Id)))
        .expr(Expr::col((user::Entity, user::Column::TokenVersion)))
        .expr(
            Expr::expr(SimpleExpr::SubQuery(
                None,
                Box::new(next_seq.into_sub_query_statement()),
            ))
            .add(1),
        )
        .expr(Expr::val(session.scope.clone()))
        .expr(Expr::val(0i64))
        .expr(Expr::val(session.created_at))
        .expr(Expr::val(session.created_at))
        .expr(Expr::val(session.expires_at))
        .expr(Expr::val(session.client_addr.clone()))
        .expr(Expr::val(session.user_agent.clone()))
        .expr(Expr::val(session.auth_time))
        .expr(Expr::val(session.amr.clone()))
        .from(user::Entity)
        .and_where(user::Column::Id.eq(session.user_id))
        .and_where(user::Column::TokenVersion.eq(session.token_version))
        .to_owned();
    Query::insert()
        .into_table(Entity)
        .columns([
            Column::Id,
            Column::UserId,
            Column::TokenVersion,
            Column::Seq,
            Column::Scope,
            Column::Generation,
            Column::CreatedAt,
            Column::LastUsedAt,
            Column::ExpiresAt,
            Column::ClientAddr,
            Column::UserAgent,
            Column::AuthTime,
            Column::Amr,
        ])
        .select_from(values)
        .expect("the select names as many values as the insert names columns")
        .to_owned()
}

/// Deletes the sessions matching `condition`, locking them in `id` order first (see the
/// module's comment); returns how many. `condition` is evaluated in a sub-select of
/// `sessions`, which its column names refer to.
async fn delete_locked(db: &impl ConnectionTrait, condition: Condition) -> Result<u64, DbErr> {
    let ids: SelectStatement = Query::select()
        .column(Column::Id)
        .from(Entity)
        .cond_where(condition)
        .order_by(Column::Id, Order::Asc)
        // Nothing on SQLite, which has one writer at a time.
        .lock(LockType::Update)
        .to_owned();
    let deleted = Entity::delete_many()
        .filter(Column::Id.in_subquery(ids))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// The user named `username` if session `session_id` is theirs and live, with when the
/// session was last used: the bearer check's one query.
pub async fn find_user_in_session(
    db: &DatabaseConnection,
    username: &str,
    session_id: &str,
) -> Result<Option<(user::Model, i64)>, DbErr> {
    if username.contains('\0') || session_id.contains('\0') {
        return Ok(None);
    }
    let backend = db.get_database_backend();
    let stmt = Statement::from_sql_and_values(
        backend,
        find_user_in_session_sql(backend),
        [username.into(), session_id.into()],
    );
    let Some(row) = db.query_one(stmt).await? else {
        return Ok(None);
    };
    let user = user::Model::from_query_result(&row, "")?;
    let last_used_at: i64 = row.try_get("", LAST_USED_ALIAS)?;
    Ok(Some((user, last_used_at)))
}

pub(super) const LAST_USED_ALIAS: &str = "session_last_used_at";

/// `find_user_in_session`'s SQL, built once per backend (as `find_user`'s). A session
/// behind its user's `token_version` is no session.
pub(super) fn find_user_in_session_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltOnce = BuiltOnce::new();
    built_once(&SQL, backend, || {
        user::Entity::find()
            .join_rev(JoinType::InnerJoin, Relation::User.def())
            .filter(user::Column::Username.eq(""))
            .filter(Column::Id.eq(""))
            .filter(
                Expr::col((Entity, Column::TokenVersion))
                    .equals((user::Entity, user::Column::TokenVersion)),
            )
            .column_as(Column::LastUsedAt, LAST_USED_ALIAS)
            .build(backend)
            .sql
    })
}

/// Records that session `session_id` was used at `now`.
pub async fn touch(db: &DatabaseConnection, session_id: &str, now: i64) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::LastUsedAt, Expr::value(now))
        .filter(Column::Id.eq(session_id))
        .filter(Column::LastUsedAt.lt(now))
        .exec(db)
        .await?;
    Ok(())
}

/// Session `session_id` and its user, as they are now.
pub async fn find_with_user(
    db: &DatabaseConnection,
    session_id: &str,
) -> Result<Option<(Model, user::Model)>, DbErr> {
    if session_id.contains('\0') {
        return Ok(None);
    }
    match Entity::find_by_id(session_id)
        .find_also_related(user::Entity)
        .one(db)
        .await?
    {
        Some((session, Some(user))) => Ok(Some((session, user))),
        _ => Ok(None),
    }
}

/// The session `session_id` as it is now.
pub async fn find(db: &DatabaseConnection, session_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(session_id).one(db).await
}

/// Ends session `session_id`; returns whether it was there.
pub async fn end(db: &DatabaseConnection, session_id: &str) -> Result<bool, DbErr> {
    let deleted = Entity::delete_by_id(session_id).exec(db).await?;
    Ok(deleted.rows_affected > 0)
}

/// Ends session `session_id` if it is `user_id`'s; returns whether it was.
pub async fn end_own(
    db: &DatabaseConnection,
    user_id: i32,
    session_id: &str,
) -> Result<bool, DbErr> {
    let deleted = Entity::delete_many()
        .filter(Column::Id.eq(session_id))
        .filter(Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// Ends every session of `username`. Called in the transaction that changes the user,
/// after the user's row (see the module's comment on lock order).
pub async fn end_all_of(db: &impl ConnectionTrait, username: &str) -> Result<u64, DbErr> {
    let user = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Username.eq(username))
        .into_query();
    delete_locked(db, Condition::all().add(Column::UserId.in_subquery(user))).await
}

/// Ends every session of user `user_id` but `keep` (the one asking, if any).
pub async fn end_others_of(
    db: &impl ConnectionTrait,
    user_id: i32,
    keep: Option<&str>,
) -> Result<u64, DbErr> {
    let mut condition = Condition::all().add(Column::UserId.eq(user_id));
    if let Some(keep) = keep {
        condition = condition.add(Column::Id.ne(keep));
    }
    delete_locked(db, condition).await
}

/// The live sessions at `now` of the user `user_id` at `token_version`, most recently
/// used first.
pub async fn list(
    db: &DatabaseConnection,
    user_id: i32,
    token_version: i64,
    now: i64,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::TokenVersion.eq(token_version))
        .filter(Column::ExpiresAt.gt(now))
        .order_by_desc(Column::LastUsedAt)
        .order_by_desc(Column::Seq)
        .all(db)
        .await
}

/// Deletes the sessions that expired before `now`, and those a raced login left behind
/// its user's `token_version`; returns how many.
pub async fn purge_expired(db: &DatabaseConnection, now: i64) -> Result<u64, DbErr> {
    let current_version = Query::select()
        .column(user::Column::TokenVersion)
        .from(user::Entity)
        .and_where(Expr::col((user::Entity, user::Column::Id)).equals((Entity, Column::UserId)))
        .to_owned();
    let stale = Expr::col((Entity, Column::TokenVersion)).ne(SimpleExpr::SubQuery(
        None,
        Box::new(current_version.into_sub_query_statement()),
    ));
    delete_locked(
        db,
        Condition::any().add(Column::ExpiresAt.lte(now)).add(stale),
    )
    .await
}
