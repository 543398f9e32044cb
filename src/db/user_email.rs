//! The queries about users' addresses: finding a user by address (as compared, see
//! [`super::email_key`]), and the addresses several users share.

use std::collections::BTreeMap;

use sea_orm::{
    sea_query::Expr, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{user, Db};

/// The user holding `email`'s key, if any. A user whose address an older user already
/// had when addresses became unique holds no key, and is not found by it.
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::EmailKey.eq(super::email_key(email)))
        .one(db)
        .await
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: i32) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// Marks `username`'s address verified (the demo users').
pub async fn mark_verified(db: &Db, username: &str) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::EmailVerified, Expr::value(true))
        .filter(user::Column::Username.eq(username))
        .exec(db)
        .await?;
    Ok(())
}

/// Addresses (as compared) that more than one user has, each with its users' names,
/// oldest user first: the duplicates that existed when addresses became unique.
pub async fn shared_addresses(db: &Db) -> Result<Vec<(String, Vec<String>)>, DbErr> {
    let users: Vec<(String, Option<String>)> = user::Entity::find()
        .select_only()
        .columns([user::Column::Username, user::Column::Email])
        .order_by_asc(user::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (username, email) in users {
        if let Some(email) = email {
            by_key
                .entry(super::email_key(&email))
                .or_default()
                .push(username);
        }
    }
    Ok(by_key
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .collect())
}
