//! The `server_secrets` table: values every replica sharing the database must agree on.

use chrono::Utc;
use sea_orm::{entity::prelude::*, sea_query::OnConflict, ActiveValue::Set};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub value: String,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The value of server secret `name`, creating it with `generate()` on first use.
/// Insert-if-absent then read back, so replicas starting together agree on one value.
pub async fn get_or_create(
    db: &DatabaseConnection,
    name: &str,
    generate: impl FnOnce() -> String,
) -> Result<String, DbErr> {
    if let Some(found) = Entity::find_by_id(name).one(db).await? {
        return Ok(found.value);
    }
    let candidate = ActiveModel {
        name: Set(name.to_owned()),
        value: Set(generate()),
        created_at: Set(Utc::now()),
    };
    Entity::insert(candidate)
        .on_conflict(OnConflict::column(Column::Name).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Entity::find_by_id(name)
        .one(db)
        .await?
        .map(|s| s.value)
        .ok_or_else(|| DbErr::RecordNotFound(format!("server secret {name}")))
}
