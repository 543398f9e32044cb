use sea_orm_migration::{prelude::*, schema::*};

/// The signing keys by algorithm: `JWT_ALGORITHM=RS256` keeps its RSA keys beside the
/// Ed25519 keys of `EdDSA`, each algorithm a rotation of its own (generation 1, 2, ...).
///
/// `signing_keys.algorithm` has been written since the table was made, always `EdDSA`;
/// existing rows keep it. It becomes part of the primary key, `(algorithm, generation)`,
/// so that replicas starting together, or rotations racing, agree on one key per
/// generation of each algorithm. Neither SQLite nor a portable `ALTER TABLE` changes a
/// primary key, so the table is rebuilt: its rows are copied aside, the table is made anew
/// and they are copied back.
///
/// `down` rebuilds the table keyed by `generation` alone with the `EdDSA` rows only: the
/// schema before knew no other algorithm (the code of that time would read an RSA key as
/// a malformed Ed25519 one and refuse to start).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, Key::AlgorithmAndGeneration, "TRUE").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, Key::Generation, "algorithm = 'EdDSA'").await
    }
}

/// The primary key of `signing_keys`.
enum Key {
    /// Before this migration.
    Generation,
    /// After it.
    AlgorithmAndGeneration,
}

const COLUMNS: &str = "generation, kid, algorithm, private_key, created_at, signs_from";

/// Makes `signing_keys` anew with `key`, keeping the rows that match `keep` (SQL).
async fn rebuild(manager: &SchemaManager<'_>, key: Key, keep: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared(&format!(
        "CREATE TABLE signing_keys_copy AS SELECT {COLUMNS} FROM signing_keys WHERE {keep}"
    ))
    .await?;
    manager
        .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
        .await?;
    let mut table = Table::create();
    table.table(SigningKeys::Table);
    match key {
        Key::Generation => {
            table.col(integer(SigningKeys::Generation).primary_key());
        }
        Key::AlgorithmAndGeneration => {
            table.col(integer(SigningKeys::Generation));
        }
    }
    table
        .col(string_len(SigningKeys::Kid, 64).unique_key())
        .col(string_len(SigningKeys::Algorithm, 16))
        .col(string(SigningKeys::PrivateKey))
        .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
        .col(timestamp_with_time_zone(SigningKeys::SignsFrom));
    if let Key::AlgorithmAndGeneration = key {
        table.primary_key(
            Index::create()
                .col(SigningKeys::Algorithm)
                .col(SigningKeys::Generation),
        );
    }
    manager.create_table(table).await?;
    db.execute_unprepared(&format!(
        "INSERT INTO signing_keys ({COLUMNS}) SELECT {COLUMNS} FROM signing_keys_copy"
    ))
    .await?;
    db.execute_unprepared("DROP TABLE signing_keys_copy")
        .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Generation,
    Kid,
    Algorithm,
    PrivateKey,
    CreatedAt,
    SignsFrom,
}
