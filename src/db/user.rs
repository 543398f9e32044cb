//! The `users` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub hashed_password: String,
    pub disabled: bool,
    /// Carried in every access token; bumping it revokes all tokens issued before.
    pub token_version: i64,
    /// The scopes the user holds, space separated (`me items`).
    pub scopes: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    /// The look-alike key of the username (see `accounts::usernames`), unique; `None` for a
    /// user whose name looks like an older user's, or not recorded yet.
    #[sea_orm(unique)]
    pub username_skeleton: Option<String>,
    /// The address as compared (`migration::email_key`: trimmed, lowercased), unique; `None`
    /// without an address, or for a user whose address an older user already had when
    /// addresses became unique (see `gatehouse user list`).
    #[sea_orm(unique)]
    pub email_key: Option<String>,
    /// Whether the user proved `email` is theirs (a verification or a reset link).
    pub email_verified: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
