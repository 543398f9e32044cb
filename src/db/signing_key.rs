//! The `signing_keys` table: the Ed25519 keys of `JWT_ALGORITHM=EdDSA` and the RSA keys of
//! `RS256`, one per algorithm and generation, with the time each starts signing. Each
//! algorithm's keys are a rotation of their own: which key signs, and which are still
//! published, follows from these times (see `auth::keys`); rows are never updated.
//!
//! `private_key` holds the PKCS#8 PEM: whoever can read the database can sign tokens,
//! as with the generated HS256 key in `server_secrets`.

use chrono::{DateTime, Utc};
use sea_orm::{entity::prelude::*, sea_query::OnConflict, ActiveValue::Set, QueryOrder};

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// The JOSE name: `EdDSA` or `RS256`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub algorithm: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub generation: i32,
    pub kid: String,
    pub private_key: String,
    pub created_at: ChronoDateTimeUtc,
    pub signs_from: ChronoDateTimeUtc,
}

/// Never prints the private key.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("signing_key::Model")
            .field("algorithm", &self.algorithm)
            .field("generation", &self.generation)
            .field("kid", &self.kid)
            .field("signs_from", &self.signs_from)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A key to store.
pub struct NewKey {
    pub generation: i32,
    pub kid: String,
    pub algorithm: &'static str,
    pub private_key: String,
    pub signs_from: DateTime<Utc>,
}

/// Every stored key of every algorithm, by algorithm, oldest generation first.
pub async fn all(db: &DatabaseConnection) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .order_by_asc(Column::Algorithm)
        .order_by_asc(Column::Generation)
        .all(db)
        .await
}

/// The stored keys of `algorithm`, oldest generation first.
pub async fn of_algorithm(db: &DatabaseConnection, algorithm: &str) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Algorithm.eq(algorithm))
        .order_by_asc(Column::Generation)
        .all(db)
        .await
}

/// Stores `key` unless its algorithm has that generation already; returns whether it was
/// stored. Replicas starting together, and rotations racing, thus agree on one key per
/// generation.
pub async fn insert_if_absent(db: &DatabaseConnection, key: NewKey) -> Result<bool, DbErr> {
    let row = ActiveModel {
        generation: Set(key.generation),
        kid: Set(key.kid),
        algorithm: Set(key.algorithm.to_owned()),
        private_key: Set(key.private_key),
        created_at: Set(Utc::now()),
        signs_from: Set(key.signs_from),
    };
    let inserted = Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::Algorithm, Column::Generation])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// Deletes the keys of `algorithm` of generations below `generation` (keys no token can
/// name any more).
pub async fn delete_before(
    db: &DatabaseConnection,
    algorithm: &str,
    generation: i32,
) -> Result<u64, DbErr> {
    let deleted = Entity::delete_many()
        .filter(Column::Algorithm.eq(algorithm))
        .filter(Column::Generation.lt(generation))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
