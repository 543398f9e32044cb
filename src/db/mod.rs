//! Storage: the connection, the entities, and the few queries gatehouse needs.
//! Knows nothing of HTTP or tokens.

pub mod email_token;
pub mod group_commit;
pub mod hot_reads;
pub mod known_client;
pub mod legacy_refresh_token;
pub mod login_failure;
pub mod mail_outbox;
pub mod scope_holders;
pub mod server_secret;
pub mod session;
pub mod signing_key;
pub mod sqlite_file;
pub mod url;
pub mod user;
pub mod user_email;
pub mod username_skeleton;

use std::{future::Future, path::Path, pin::Pin, str::FromStr, sync::OnceLock, time::Duration};

use chrono::Utc;
use sea_orm::{
    sea_query::{Expr, OnConflict, SimpleExpr},
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QueryTrait,
    RuntimeErr, SqlErr, Statement, TransactionError, TransactionTrait,
};

pub use sea_orm::DatabaseConnection as Db;

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

/// The fields of a user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub hashed_password: String,
    pub disabled: bool,
    /// The name's look-alike key (`users.username_skeleton`), unique; `None` leaves it to
    /// be recorded when the server next starts.
    pub username_skeleton: Option<String>,
}

/// Changes to one user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub email: Option<Option<String>>,
    pub full_name: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub hashed_password: Option<String>,
    pub scopes: Option<String>,
}

/// Applies `changes` to `username`; disabling or a new password also revokes every token
/// and session issued before. Returns whether the user exists.
pub async fn change_user(db: &Db, username: &str, changes: UserChanges) -> Result<bool, DbErr> {
    let (update, revoke) = user_update(username, changes);
    update_and_revoke(db, username, update, revoke).await
}

/// Applies `changes` that revoke nothing (profile, scopes) to `username` in `txn`;
/// returns whether the user exists.
pub async fn change_user_in(
    txn: &DatabaseTransaction,
    username: &str,
    changes: UserChanges,
) -> Result<bool, DbErr> {
    let (update, _) = user_update(username, changes);
    Ok(update.exec(txn).await?.rows_affected > 0)
}

/// The one statement that applies `changes` to `username`, and whether it revokes (bumps
/// `token_version`): a disable or a new password does.
fn user_update(username: &str, changes: UserChanges) -> (sea_orm::UpdateMany<user::Entity>, bool) {
    let revoke = changes.disabled == Some(true) || changes.hashed_password.is_some();
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Username.eq(username));
    if let Some(email) = changes.email {
        let key = email.as_deref().map(email_key);
        // Another address is unverified until proven; the same one stays as it was.
        update = update
            .col_expr(
                user::Column::EmailVerified,
                Expr::case(
                    Expr::col(user::Column::EmailKey).eq(key.clone()),
                    Expr::col(user::Column::EmailVerified),
                )
                .finally(false)
                .into(),
            )
            .col_expr(user::Column::EmailKey, Expr::value(key))
            .col_expr(user::Column::Email, Expr::value(email));
    }
    if let Some(full_name) = changes.full_name {
        update = update.col_expr(user::Column::FullName, Expr::value(full_name));
    }
    if let Some(disabled) = changes.disabled {
        update = update.col_expr(user::Column::Disabled, Expr::value(disabled));
    }
    if let Some(hash) = changes.hashed_password {
        update = update.col_expr(user::Column::HashedPassword, Expr::value(hash));
    }
    if let Some(scopes) = changes.scopes {
        update = update.col_expr(user::Column::Scopes, Expr::value(scopes));
    }
    if revoke {
        update = update.col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        );
    }
    (update, revoke)
}

/// Runs `update` on `username`; with `revoke`, also ends every session of the user, in
/// the same transaction: no refresh token may outlive the access tokens the bump revoked.
async fn update_and_revoke(
    db: &Db,
    username: &str,
    update: sea_orm::UpdateMany<user::Entity>,
    revoke: bool,
) -> Result<bool, DbErr> {
    if !revoke {
        return Ok(update.exec(db).await?.rows_affected > 0);
    }
    // The user's row first, then the sessions (see `session`'s comment on lock order).
    retrying_conflicts(db, |txn| {
        let (update, username) = (update.clone(), username.to_owned());
        Box::pin(async move {
            let exists = update.exec(txn).await?.rows_affected > 0;
            session::end_all_of(txn, &username).await?;
            Ok(exists)
        })
    })
    .await
}

/// Deletes `username`; returns whether the user existed.
pub async fn delete_user(db: &Db, username: &str) -> Result<bool, DbErr> {
    // The sessions first, in the one lock order, rather than by the foreign key's
    // cascade, whose order is the table's.
    retrying_conflicts(db, |txn| {
        let username = username.to_owned();
        Box::pin(async move {
            session::end_all_of(txn, &username).await?;
            let deleted = user::Entity::delete_many()
                .filter(user::Column::Username.eq(&username))
                .exec(txn)
                .await?;
            Ok(deleted.rows_affected > 0)
        })
    })
    .await
}

/// How often a transaction that PostgreSQL aborted for a conflict is tried.
const CONFLICT_ATTEMPTS: u32 = 5;

/// Runs `work` in a transaction, and again when PostgreSQL chose it as a deadlock's
/// victim or failed it for serialization: such a failure is a race lost, not an error of
/// the request. With one lock order it should not happen; a revocation must not fail
/// because refreshes run at the same time, so it is retried all the same.
async fn retrying_conflicts<T, F>(db: &Db, work: F) -> Result<T, DbErr>
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

/// How addresses are compared (trimmed, lowercased): what `users.email_key` holds.
pub use migration::email_key;

/// Whether `e` is the refusal of an address another user has (`users.email_key`'s UNIQUE
/// index), as opposed to a taken username.
pub fn is_email_taken(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(msg)) if msg.contains("email_key"))
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("user {0:?} already exists")]
    Exists(String),
    #[error("another user has the address {0:?}")]
    EmailTaken(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// [`find_user`] in a transaction (or on any connection).
pub async fn find_user_in(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await
}

pub async fn find_user(db: &Db, username: &str) -> Result<Option<user::Model>, DbErr> {
    // No stored name has a NUL (PostgreSQL text cannot hold one, and it would answer an
    // error, not "no such row"), so such a lookup is simply "no user".
    if username.contains('\0') {
        return Ok(None);
    }
    let backend = db.get_database_backend();
    let stmt = Statement::from_sql_and_values(backend, find_user_sql(backend), [username.into()]);
    user::Entity::find().from_raw_sql(stmt).one(db).await
}

/// The user named `sent`, else the one named `alternative` (another form of the same
/// name), in one query.
pub async fn find_user_or(
    db: &Db,
    sent: &str,
    alternative: &str,
) -> Result<Option<user::Model>, DbErr> {
    if sent == alternative || alternative.contains('\0') {
        return find_user(db, sent).await;
    }
    if sent.contains('\0') {
        return find_user(db, alternative).await;
    }
    let mut found = user::Entity::find()
        .filter(user::Column::Username.is_in([sent, alternative]))
        .all(db)
        .await?;
    found.sort_by_key(|u| u.username != sent);
    Ok(found.into_iter().next())
}

/// `find_user`'s SQL (see [`built_once`]). Usernames are unique, so it needs no `LIMIT`.
pub(super) fn find_user_sql(backend: DbBackend) -> &'static str {
    static SQL: BuiltOnce = BuiltOnce::new();
    built_once(&SQL, backend, || {
        user::Entity::find()
            .filter(user::Column::Username.eq(""))
            .build(backend)
            .sql
    })
}

/// One statement's SQL per backend, built on first use.
pub(crate) struct BuiltOnce([OnceLock<String>; 3]);

impl BuiltOnce {
    pub(crate) const fn new() -> Self {
        Self([OnceLock::new(), OnceLock::new(), OnceLock::new()])
    }
}

/// The SQL of a query run on every request, built by SeaORM once per backend rather than
/// each time (building it cost more instructions than SQLite spends running it).
pub(crate) fn built_once(
    cache: &'static BuiltOnce,
    backend: DbBackend,
    build: impl FnOnce() -> String,
) -> &'static str {
    let slot = match backend {
        DbBackend::Sqlite => 0,
        DbBackend::Postgres => 1,
        DbBackend::MySql => 2,
    };
    cache.0[slot].get_or_init(build)
}

pub async fn list_users(db: &Db) -> Result<Vec<user::Model>, DbErr> {
    user::Entity::find()
        .order_by_asc(user::Column::Username)
        .all(db)
        .await
}

/// `scopes` `None`: what the schema gives (`me items`).
fn active_user(new: NewUser, scopes: Option<String>) -> user::ActiveModel {
    let now = Utc::now();
    user::ActiveModel {
        id: NotSet,
        username: Set(new.username),
        full_name: Set(new.full_name),
        hashed_password: Set(new.hashed_password),
        disabled: Set(new.disabled),
        token_version: Set(0),
        scopes: scopes.map_or(NotSet, Set),
        created_at: Set(now),
        updated_at: Set(now),
        username_skeleton: Set(new.username_skeleton),
        email_key: Set(new.email.as_deref().map(email_key)),
        // A new address is unverified until proven.
        email_verified: Set(false),
        email: Set(new.email),
    }
}

pub async fn create_user(db: &Db, new: NewUser) -> Result<(), CreateUserError> {
    create_user_holding(db, new, None).await
}

/// Creates a user holding `scopes` (space separated; `None`: the schema's default).
pub async fn create_user_holding(
    db: &impl ConnectionTrait,
    new: NewUser,
    scopes: Option<String>,
) -> Result<(), CreateUserError> {
    let username = new.username.clone();
    let email = new.email.clone().unwrap_or_default();
    match user::Entity::insert(active_user(new, scopes))
        .exec(db)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_email_taken(&e) => Err(CreateUserError::EmailTaken(email)),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(CreateUserError::Exists(username))
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the user unless the username (or its look-alike key) is taken; returns whether
/// it was created.
pub async fn create_user_if_absent(db: &Db, new: NewUser) -> Result<bool, DbErr> {
    create_user_holding_if_absent(db, new, None).await
}

/// [`create_user_if_absent`], the user holding `scopes` as in [`create_user_holding`].
pub async fn create_user_holding_if_absent(
    db: &Db,
    new: NewUser,
    scopes: Option<String>,
) -> Result<bool, DbErr> {
    // No conflict target: a taken name or a taken look-alike key alike.
    let inserted = user::Entity::insert(active_user(new, scopes))
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// Sets a new password hash and revokes every token and session issued before. Returns whether the user exists.
pub async fn change_password(
    db: &Db,
    username: &str,
    hashed_password: String,
) -> Result<bool, DbErr> {
    let set = (user::Column::HashedPassword, Expr::value(hashed_password));
    update_user(db, username, Some(set), Revoke::Yes).await
}

/// Enables or disables a user; disabling also revokes every token and session.
pub async fn set_disabled(db: &Db, username: &str, disabled: bool) -> Result<bool, DbErr> {
    let revoke = if disabled { Revoke::Yes } else { Revoke::No };
    let set = (user::Column::Disabled, Expr::value(disabled));
    update_user(db, username, Some(set), revoke).await
}

/// Revokes every token and session issued to `username` so far.
pub async fn revoke_tokens(db: &Db, username: &str) -> Result<bool, DbErr> {
    update_user(db, username, None, Revoke::Yes).await
}

#[derive(PartialEq)]
enum Revoke {
    Yes,
    No,
}

/// Sets one column of `username` (and `updated_at`), bumping `token_version` when
/// `revoke` says so. Returns whether the user exists.
async fn update_user(
    db: &Db,
    username: &str,
    set: Option<(user::Column, SimpleExpr)>,
    revoke: Revoke,
) -> Result<bool, DbErr> {
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Username.eq(username));
    if let Some((column, value)) = set {
        update = update.col_expr(column, value);
    }
    if revoke == Revoke::Yes {
        update = update.col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        );
    }
    update_and_revoke(db, username, update, revoke == Revoke::Yes).await
}

/// Replaces an outdated hash after a successful login, without revoking tokens.
/// Only if the hash is still `old`: a concurrent password change wins.
pub async fn upgrade_password_hash(db: &Db, id: i32, old: &str, new: String) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::HashedPassword, Expr::value(new))
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::HashedPassword.eq(old))
        .exec(db)
        .await?;
    Ok(())
}

/// The value of server secret `name`, creating it with `generate()` on first use.
/// Insert-if-absent then read back, so replicas starting together agree on one value.
pub async fn server_secret(
    db: &Db,
    name: &str,
    generate: impl FnOnce() -> String,
) -> Result<String, DbErr> {
    if let Some(found) = server_secret::Entity::find_by_id(name).one(db).await? {
        return Ok(found.value);
    }
    let candidate = server_secret::ActiveModel {
        name: Set(name.to_owned()),
        value: Set(generate()),
        created_at: Set(Utc::now()),
    };
    server_secret::Entity::insert(candidate)
        .on_conflict(
            OnConflict::column(server_secret::Column::Name)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    server_secret::Entity::find_by_id(name)
        .one(db)
        .await?
        .map(|s| s.value)
        .ok_or_else(|| DbErr::RecordNotFound(format!("server secret {name}")))
}
