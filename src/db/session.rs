//! The `sessions` table and the queries of sessions and their refresh tokens.
//!
//! Ending a session deletes its row (its refresh tokens go with it): the bearer check
//! joins the session with the user, so its access tokens stop working at once.
//! Every check that decides between two concurrent requests is one conditional statement
//! in the database, never a lock in this process: replicas share only the database.

use sea_orm::{
    entity::prelude::*, sea_query::Expr, ActiveValue::Set, DbBackend, FromQueryResult, JoinType,
    QueryOrder, QuerySelect, QueryTrait, Statement,
};

use super::{built_once, refresh_token, user, BuiltOnce};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// 128 random bits, base64url; carried by access tokens as `sid`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: i32,
    /// The scopes granted at login, space separated.
    pub scope: String,
    /// Rotations so far; the current refresh token is derived from it.
    pub generation: i64,
    /// Unix seconds, as are the next two.
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
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
    #[sea_orm(has_many = "super::refresh_token::Entity")]
    RefreshTokens,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::refresh_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RefreshTokens.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// A refresh token to store: its hash and when it expires (Unix seconds).
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub expires_at: i64,
}

/// Stores a new session (and its first refresh token), then ends the user's oldest
/// sessions beyond `max_live`.
///
/// Autocommit statements, no transaction: on SQLite a transaction that fails for a full
/// disk can stay open on its pooled connection and hold the write lock, so that every
/// later write waits out the busy timeout. A refresh token that cannot be stored takes
/// its session with it (best effort: a session without one only lives until its access
/// token expires).
pub async fn start(
    db: &DatabaseConnection,
    session: Model,
    refresh: Option<NewRefreshToken>,
    max_live: u64,
) -> Result<(), DbErr> {
    let user_id = session.user_id;
    let session_id = session.id.clone();
    let generation = session.generation;
    Entity::insert(ActiveModel::from(session))
        .exec_without_returning(db)
        .await?;
    if let Some(refresh) = refresh {
        if let Err(e) = insert_refresh_token(db, &session_id, generation, refresh).await {
            let _ = end(db, &session_id).await;
            return Err(e);
        }
    }
    // At most `max_live + 1` rows: the bound is kept at every login. (SQLite has no
    // `OFFSET` without `LIMIT`, hence the skip here.)
    let newest_first: Vec<String> = Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::UserId.eq(user_id))
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let keep = usize::try_from(max_live).unwrap_or(usize::MAX);
    let beyond: Vec<String> = newest_first.into_iter().skip(keep).collect();
    if !beyond.is_empty() {
        Entity::delete_many()
            .filter(Column::Id.is_in(beyond))
            .exec(db)
            .await?;
    }
    Ok(())
}

async fn insert_refresh_token(
    db: &impl ConnectionTrait,
    session_id: &str,
    generation: i64,
    token: NewRefreshToken,
) -> Result<(), DbErr> {
    refresh_token::Entity::insert(unspent_refresh_token(session_id, generation, token))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The row of `token`, the current (unspent) refresh token of session `session_id` at
/// `generation`.
pub(super) fn unspent_refresh_token(
    session_id: &str,
    generation: i64,
    token: NewRefreshToken,
) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        token_hash: Set(token.token_hash),
        session_id: Set(session_id.to_owned()),
        generation: Set(generation),
        expires_at: Set(token.expires_at),
        spent_at: Set(None),
    }
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

/// `find_user_in_session`'s SQL, built once per backend (as `find_user`'s).
pub(super) fn find_user_in_session_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltOnce = BuiltOnce::new();
    built_once(&SQL, backend, || {
        user::Entity::find()
            .join_rev(JoinType::InnerJoin, Relation::User.def())
            .filter(user::Column::Username.eq(""))
            .filter(Column::Id.eq(""))
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

/// A refresh token as presented: the stored token, its session and the session's user.
#[derive(Debug, Clone)]
pub struct PresentedRefresh {
    pub token: refresh_token::Model,
    pub session: Model,
    pub user: user::Model,
}

/// The refresh token whose hash is `token_hash`, with its session and user.
pub async fn find_refresh_token(
    db: &DatabaseConnection,
    token_hash: &str,
) -> Result<Option<PresentedRefresh>, DbErr> {
    let Some((token, Some(session))) = refresh_token::Entity::find_by_id(token_hash)
        .find_also_related(Entity)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(user) = user::Entity::find_by_id(session.user_id).one(db).await? else {
        return Ok(None);
    };
    Ok(Some(PresentedRefresh {
        token,
        session,
        user,
    }))
}

/// What a rotation stores.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub session_id: String,
    pub spent_hash: String,
    pub next: NewRefreshToken,
    /// The session's generation after the rotation.
    pub generation: i64,
    pub now: i64,
}

/// The session `session_id` as it is now.
pub async fn find(db: &DatabaseConnection, session_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(session_id).one(db).await
}

/// Ends session `session_id`; returns whether it was live.
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

/// Ends every session of `username`.
pub async fn end_all_of(db: &impl ConnectionTrait, username: &str) -> Result<u64, DbErr> {
    let deleted = Entity::delete_many()
        .filter(
            Column::UserId.in_subquery(
                user::Entity::find()
                    .select_only()
                    .column(user::Column::Id)
                    .filter(user::Column::Username.eq(username))
                    .into_query(),
            ),
        )
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// The live sessions of `user_id` at `now`, most recently used first.
pub async fn list(db: &DatabaseConnection, user_id: i32, now: i64) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::ExpiresAt.gt(now))
        .order_by_desc(Column::LastUsedAt)
        .order_by_desc(Column::CreatedAt)
        .all(db)
        .await
}

/// Deletes sessions and refresh tokens that expired before `now`; returns how many of
/// each.
pub async fn purge_expired(db: &DatabaseConnection, now: i64) -> Result<(u64, u64), DbErr> {
    let sessions = Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    let tokens = refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok((sessions.rows_affected, tokens.rows_affected))
}
