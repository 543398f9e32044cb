//! The `browser_sessions` table: people signed in on the login page, for single sign-on.
//! The cookie's SHA-256 only is kept (a stolen database holds no usable cookie); a row
//! counts only while its user's `token_version` is the one it was started at, so a
//! password change, a disable or a revoke ends every browser session too.

use sea_orm::{entity::prelude::*, ActiveValue::Set};

use super::{user, Db};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "browser_sessions")]
pub struct Model {
    /// SHA-256 of the cookie's value, hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id_hash: String,
    pub user_id: i32,
    pub token_version: i64,
    /// When and how the user signed in (Unix seconds; RFC 8176 methods).
    pub auth_time: i64,
    pub amr: String,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub async fn insert(db: &Db, session: Model) -> Result<(), DbErr> {
    let row = ActiveModel {
        id_hash: Set(session.id_hash),
        user_id: Set(session.user_id),
        token_version: Set(session.token_version),
        auth_time: Set(session.auth_time),
        amr: Set(session.amr),
        expires_at: Set(session.expires_at),
    };
    Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// The live session with `id_hash` at `now` and its user, if the user is enabled and
/// their `token_version` is still the session's.
pub async fn find_live(
    db: &Db,
    id_hash: &str,
    now: i64,
) -> Result<Option<(Model, user::Model)>, DbErr> {
    let Some(session) = Entity::find_by_id(id_hash)
        .filter(Column::ExpiresAt.gt(now))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let user = user::Entity::find_by_id(session.user_id).one(db).await?;
    Ok(user
        .filter(|u| !u.disabled && u.token_version == session.token_version)
        .map(|u| (session, u)))
}

/// Ends the session with `id_hash`; whether there was one.
pub async fn end(db: &Db, id_hash: &str) -> Result<bool, DbErr> {
    Ok(Entity::delete_by_id(id_hash).exec(db).await?.rows_affected > 0)
}

/// Deletes sessions expired at `now`.
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64, DbErr> {
    let deleted = Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
