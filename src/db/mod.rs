//! Storage: the connection and its pool here; each table's entity and queries in a
//! module of its own. Knows nothing of HTTP or tokens.

pub mod authorization_code;
pub mod browser_session;
mod built_once;
pub mod email_token;
pub mod group_commit;
pub mod hot_reads;
pub mod known_client;
pub mod legacy_refresh_token;
pub mod login_failure;
pub mod mail_outbox;
pub mod oauth_client;
pub mod scope_holders;
pub mod server_secret;
pub mod session;
pub mod signing_key;
pub mod sqlite_file;
pub mod totp;
pub mod url;
pub mod user;
pub mod user_email;
pub mod username_skeleton;

use std::{future::Future, path::Path, pin::Pin, str::FromStr, time::Duration};

use sea_orm::{
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, RuntimeErr, TransactionError, TransactionTrait,
};

pub use sea_orm::DatabaseConnection as Db;

/// How addresses are compared (trimmed, lowercased): what `users.email_key` holds.
pub use migration::email_key;

/// The embedded default: a SQLite file in the working directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gatehouse.db?mode=rwc";

/// How long opening a connection, or waiting for a free one, may take before the caller
/// gets an error: a start-up fails, a request answers 503.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite connections in the pool. SeaORM's default for SQLite is one, which makes every
/// request wait for every other; each connection is a thread of its own, and past two per
/// core more only adds threads (bench/RESULTS.md).
const SQLITE_POOL_SIZE: u32 = 4;

/// Opens a pool on `url` (SQLite or PostgreSQL).
///
/// SQLite runs in WAL mode so readers never block the writer, with a busy timeout
/// instead of immediate `SQLITE_BUSY`, foreign keys on, and `synchronous=FULL` so a
/// committed user survives power loss, not only a crash.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT);
    if url.starts_with("sqlite:") {
        // A file cannot drop a connection the way a network can, so the ping sqlx would
        // send before every checkout is a wasted round trip to the connection's thread.
        opts.max_connections(SQLITE_POOL_SIZE)
            .test_before_acquire(false);
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    }
    Database::connect(opts).await
}

/// A migrated SQLite file in `dir`, for the crate's own tests.
#[cfg(test)]
pub(crate) async fn migrated_for_tests(dir: &Path) -> DatabaseConnection {
    use migration::{Migrator, MigratorTrait};
    let url = format!("sqlite://{}?mode=rwc", dir.join("gatehouse.db").display());
    let db = connect(&url)
        .await
        .expect("a SQLite file in a temporary directory opens");
    Migrator::up(&db, None)
        .await
        .expect("the migrations apply to an empty database");
    db
}

/// What stops a SQLite URL from opening as configured, in plain words; SQLite's own error
/// for each is "unable to open database file". A missing file is created only when the URL
/// asks for it with `mode=rwc` (as the default URL does), so a mistyped path never starts
/// the service on a new, empty database.
pub fn sqlite_file_problem(url: &str) -> Option<String> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let mode = sqlite_file::url_mode(url);
    if mode.as_deref() == Some("memory") || url.contains(":memory:") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Some(format!(
            "the directory {} of the SQLite database does not exist",
            dir.display()
        ));
    }
    if mode.as_deref() != Some("rwc") && !path.exists() {
        return Some(format!(
            "the SQLite database {} does not exist (add ?mode=rwc to the URL to create it)",
            path.display()
        ));
    }
    None
}

/// Holds PostgreSQL's migration lock until the returned transaction ends, so replicas
/// starting together migrate one after the other instead of racing to create the same
/// tables; the later ones then find nothing pending. A replica waits at most 30 s for it.
/// `None` on SQLite, which serves a single replica.
pub async fn migration_lock(db: &Db) -> Result<Option<DatabaseTransaction>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let txn = db.begin().await?;
    txn.execute_unprepared("SET LOCAL lock_timeout = '30s'")
        .await?;
    // Any fixed key: b"gatehous" as a big-endian i64.
    txn.execute_unprepared("SELECT pg_advisory_xact_lock(7449363237540164979)")
        .await?;
    Ok(Some(txn))
}

/// Whether SQLite could not open (or create) the file: SQLITE_CANTOPEN, the error of a
/// read-only directory or file system.
pub fn is_sqlite_cannot_open(e: &DbErr) -> bool {
    match e {
        DbErr::Conn(RuntimeErr::SqlxError(sea_orm::sqlx::Error::Database(e))) => {
            e.code().as_deref() == Some("14")
        }
        _ => false,
    }
}

/// Whether no connection could be made within the connect timeout: a server that refuses
/// or never answers, where the pool reports only that it timed out.
pub fn is_connect_timeout(e: &DbErr) -> bool {
    matches!(
        e,
        DbErr::Conn(RuntimeErr::SqlxError(sea_orm::sqlx::Error::PoolTimedOut))
    )
}

/// How often a transaction that PostgreSQL aborted for a conflict is tried.
const CONFLICT_ATTEMPTS: u32 = 5;

/// Runs `work` in a transaction, and again when PostgreSQL chose it as a deadlock's
/// victim or failed it for serialization: such a failure is a race lost, not an error of
/// the request. With one lock order it should not happen; a revocation must not fail
/// because refreshes run at the same time, so it is retried all the same.
pub(super) async fn retrying_conflicts<T, F>(db: &Db, work: F) -> Result<T, DbErr>
where
    T: Send,
    F: for<'c> Fn(
            &'c DatabaseTransaction,
        ) -> Pin<Box<dyn Future<Output = Result<T, DbErr>> + Send + 'c>>
        + Send
        + Sync,
{
    let mut attempt = 1;
    loop {
        match db.transaction::<_, T, DbErr>(|txn| work(txn)).await {
            Ok(done) => return Ok(done),
            Err(TransactionError::Transaction(e))
                if attempt < CONFLICT_ATTEMPTS && is_conflict(&e) =>
            {
                tracing::info!(error = %e, attempt, "transaction lost a race; retrying");
                attempt += 1;
            }
            Err(TransactionError::Connection(e) | TransactionError::Transaction(e)) => {
                return Err(e)
            }
        }
    }
}

/// Whether PostgreSQL aborted a statement as a deadlock's victim (40P01) or for a
/// serialization failure (40001).
pub fn is_conflict(e: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(sea_orm::sqlx::Error::Database(e)))
    | DbErr::Query(RuntimeErr::SqlxError(sea_orm::sqlx::Error::Database(e)))) = e
    else {
        return false;
    };
    matches!(e.code().as_deref(), Some("40P01" | "40001"))
}
