//! The `legacy_refresh_tokens` table: the refresh tokens issued before refresh tokens
//! carried their session, as SHA-256 hashes. Never written any more; it maps a token
//! issued then to its session and rotation count, so that the current one still rotates
//! and a spent one still ends its session, until they expire and are purged.

use sea_orm::{entity::prelude::*, QuerySelect};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "legacy_refresh_tokens")]
pub struct Model {
    /// SHA-256 of the token, hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub session_id: String,
    /// The session's rotation count when this token was issued.
    pub generation: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds when it was exchanged for a new pair, before the migration.
    pub spent_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::session::Entity",
        from = "Column::SessionId",
        to = "super::session::Column::Id"
    )]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// The session and rotation count of the unexpired legacy token whose hash is
/// `token_hash`.
pub async fn find(
    db: &DatabaseConnection,
    token_hash: &str,
    now: i64,
) -> Result<Option<(String, i64)>, DbErr> {
    Entity::find_by_id(token_hash)
        .filter(Column::ExpiresAt.gt(now))
        .select_only()
        .columns([Column::SessionId, Column::Generation])
        .into_tuple()
        .one(db)
        .await
}

/// Deletes the legacy tokens that expired before `now`; returns how many.
pub async fn purge_expired(db: &DatabaseConnection, now: i64) -> Result<u64, DbErr> {
    let deleted = Entity::delete_many()
        .filter(Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
