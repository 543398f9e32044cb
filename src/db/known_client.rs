//! The `known_clients` table: client addresses from which a user has logged in
//! successfully, until they expire. Shared by every replica on the database.

use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, OnConflict, Query},
    ActiveValue::Set,
};

use super::user;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "known_clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub address: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Until when `address` is known for the user named `username` (the user, not the name:
/// the row belongs to a user id), if it is still known at `now`.
pub async fn known_until(
    db: &DatabaseConnection,
    username: &str,
    address: &str,
    now: i64,
) -> Result<Option<i64>, DbErr> {
    // PostgreSQL text cannot hold NUL, and no stored name has one.
    if username.contains('\0') {
        return Ok(None);
    }
    let query = Query::select()
        .column((Entity, Column::ExpiresAt))
        .from(Entity)
        .inner_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::Id)).equals((Entity, Column::UserId)),
        )
        .and_where(Expr::col((user::Entity, user::Column::Username)).eq(username))
        .and_where(Expr::col((Entity, Column::Address)).eq(address))
        .and_where(Expr::col((Entity, Column::ExpiresAt)).gt(now))
        .to_owned();
    let row = db
        .query_one(db.get_database_backend().build(&query))
        .await?;
    row.map(|row| row.try_get::<i64>("", Column::ExpiresAt.as_str()))
        .transpose()
}

/// Records that `user_id` logged in from `address`, known until `expires_at`.
pub async fn remember(
    db: &DatabaseConnection,
    user_id: i32,
    address: &str,
    expires_at: i64,
) -> Result<(), DbErr> {
    let row = ActiveModel {
        user_id: Set(user_id),
        address: Set(address.to_owned()),
        expires_at: Set(expires_at),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::UserId, Column::Address])
                .update_column(Column::ExpiresAt)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Deletes the rows that expired before `now`; returns how many.
pub async fn purge_expired(db: &DatabaseConnection, now: i64) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
