//! The read every authenticated request makes: the token's user, joined with its session.
//!
//! On PostgreSQL it goes through SeaORM's executor like every other query. On the SQLite
//! file it bypasses it: sqlx runs each SQLite connection on a thread of its own and hands
//! every statement across with channels, which cost more than SQLite spends on the read
//! (3.8 context switches per request in `bench/RESULTS.md`). Here the same statement runs
//! in the calling thread, on a read-only `rusqlite` connection kept for reuse with its
//! prepared statement.
//!
//! Nothing is cached but the connection and the compiled statement: every call reads the
//! database as it is when the call starts (a WAL read transaction sees every commit made
//! before it began, by this process, another replica's or the CLI's), so a revocation is
//! seen by the very next request. The SQL is SeaORM's own, built once by sea-query
//! (`session::find_user_in_session_sql`, `find_user_sql`), so both paths run one
//! statement. Any error of the direct path (a busy database, a connection that cannot
//! open) falls back to SeaORM's, which answers it as every other query does.
//!
//! The read blocks the async worker for its duration: a lookup by unique index in a
//! file whose pages are in the OS cache, a few microseconds, less than the channel hops
//! it replaces. A reader waits at most `BUSY_TIMEOUT` for a lock (WAL readers only ever
//! wait while a crashed writer's log is recovered) before it falls back.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, IdenStatic};

use super::{session, user, Db};

/// How long a direct read waits for a lock before it falls back to SeaORM's pool.
const BUSY_TIMEOUT: Duration = Duration::from_millis(20);

/// Idle connections kept: one per thread that reads at once is enough.
const MAX_IDLE: usize = 16;

/// The per-request reads, over the SQLite file directly where there is one.
#[derive(Clone)]
pub struct HotReads {
    db: Db,
    sqlite: Option<Arc<SqliteReader>>,
}

impl HotReads {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            sqlite: SqliteReader::for_db(db).map(Arc::new),
        }
    }

    /// Whether reads bypass SeaORM's executor (a SQLite file).
    pub fn is_direct(&self) -> bool {
        self.sqlite.is_some()
    }

    /// `username` and when session `session_id` of theirs was last used (Unix seconds), if
    /// the session is theirs and live.
    pub async fn user_in_session(
        &self,
        username: &str,
        session_id: &str,
    ) -> Result<Option<(user::Model, i64)>, DbErr> {
        if let Some(sqlite) = &self.sqlite {
            match sqlite.user_in_session(username, session_id) {
                Ok(found) => return Ok(found),
                Err(e) => tracing::debug!(error = %e, "direct SQLite read failed; using the pool"),
            }
        }
        session::find_user_in_session(&self.db, username, session_id).await
    }

    /// The user named `username`.
    pub async fn user(&self, username: &str) -> Result<Option<user::Model>, DbErr> {
        if let Some(sqlite) = &self.sqlite {
            match sqlite.user(username) {
                Ok(found) => return Ok(found),
                Err(e) => tracing::debug!(error = %e, "direct SQLite read failed; using the pool"),
            }
        }
        user::find(&self.db, username).await
    }
}

/// Read-only connections to one SQLite file, reused.
struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Where each field is in the two statements' rows, found once by name.
    user_columns: UserColumns,
    session_columns: (UserColumns, usize),
}

impl SqliteReader {
    /// A reader of `db`'s file; `None` for PostgreSQL and for in-memory databases, which
    /// another connection cannot see.
    fn for_db(db: &Db) -> Option<Self> {
        if !matches!(db, DatabaseConnection::SqlxSqlitePoolConnection(_)) {
            return None;
        }
        let options = db.get_sqlite_connection_pool().connect_options();
        let path = options.get_filename();
        let name = path.to_string_lossy();
        if name == ":memory:" || name.starts_with("file:") || !path.is_file() {
            return None;
        }
        // Checked once here, so a file it cannot read never costs a failed open per request.
        let opened = Self::open(path).and_then(|conn| {
            let user_columns = UserColumns::of(&*conn.prepare_cached(user_sql())?)?;
            let session = conn.prepare_cached(user_in_session_sql())?;
            let session_columns = (
                UserColumns::of(&session)?,
                session.column_index(session::LAST_USED_ALIAS)?,
            );
            drop(session);
            Ok((conn, user_columns, session_columns))
        });
        match opened {
            Ok((conn, user_columns, session_columns)) => Some(Self {
                path: path.to_owned(),
                idle: Mutex::new(vec![conn]),
                user_columns,
                session_columns,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the SQLite file directly; every read uses the pool");
                None
            }
        }
    }

    fn open(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    /// Runs `read` on an idle connection (opened if there is none), then keeps it.
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => Self::open(&self.path)?,
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        result
    }

    fn user_in_session(
        &self,
        username: &str,
        session_id: &str,
    ) -> rusqlite::Result<Option<(user::Model, i64)>> {
        let (columns, last_used) = &self.session_columns;
        self.with(|conn| {
            conn.prepare_cached(user_in_session_sql())?
                .query_row([username, session_id], |row| {
                    Ok((columns.read(row)?, row.get(*last_used)?))
                })
                .optional()
        })
    }

    fn user(&self, username: &str) -> rusqlite::Result<Option<user::Model>> {
        self.with(|conn| {
            conn.prepare_cached(user_sql())?
                .query_row([username], |row| self.user_columns.read(row))
                .optional()
        })
    }
}

fn user_sql() -> &'static str {
    user::find_sql(DbBackend::Sqlite)
}

fn user_in_session_sql() -> &'static str {
    session::find_user_in_session_sql(DbBackend::Sqlite)
}

/// The index of each of a user's fields in a statement's rows.
struct UserColumns([usize; 13]);

impl UserColumns {
    const NAMES: [user::Column; 13] = [
        user::Column::Id,
        user::Column::Username,
        user::Column::Email,
        user::Column::FullName,
        user::Column::HashedPassword,
        user::Column::Disabled,
        user::Column::TokenVersion,
        user::Column::Scopes,
        user::Column::CreatedAt,
        user::Column::UpdatedAt,
        user::Column::UsernameSkeleton,
        user::Column::EmailKey,
        user::Column::EmailVerified,
    ];

    fn of(statement: &rusqlite::Statement<'_>) -> rusqlite::Result<Self> {
        let mut at = [0; 13];
        for (slot, column) in at.iter_mut().zip(Self::NAMES) {
            *slot = statement.column_index(column.as_str())?;
        }
        Ok(Self(at))
    }

    /// The user in `row`, as SeaORM would read it.
    fn read(&self, row: &Row<'_>) -> rusqlite::Result<user::Model> {
        let [id, username, email, full_name, hashed_password, disabled, token_version, scopes, created_at, updated_at, username_skeleton, email_key, email_verified] =
            self.0;
        Ok(user::Model {
            id: row.get(id)?,
            username: row.get(username)?,
            email: row.get(email)?,
            full_name: row.get(full_name)?,
            hashed_password: row.get(hashed_password)?,
            disabled: row.get(disabled)?,
            token_version: row.get(token_version)?,
            scopes: row.get(scopes)?,
            created_at: timestamp(row, created_at)?,
            updated_at: timestamp(row, updated_at)?,
            username_skeleton: row.get(username_skeleton)?,
            email_key: row.get(email_key)?,
            email_verified: row.get(email_verified)?,
        })
    }
}

/// A timestamp as sqlx stores it (RFC 3339 text), parsed without a format string; any
/// other form as rusqlite reads it.
fn timestamp(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    if let Ok(text) = row.get_ref(index)?.as_str() {
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(at.with_timezone(&Utc));
        }
    }
    row.get(index)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::db::{
        connect, migrated_for_tests,
        user::{NewUser, UserChanges},
    };

    /// A migrated SQLite file in `dir`, with the user `alice` and her session `s1`.
    pub(crate) async fn database_with_a_session(dir: &Path) -> Db {
        let db = migrated_for_tests(dir).await;
        let user = NewUser {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            full_name: None,
            hashed_password: "$argon2id$not-a-real-hash".into(),
            disabled: false,
            username_skeleton: None,
            scopes: None,
        };
        assert!(user::create(&db, user).await.unwrap());
        add_session(&db, "s1").await;
        db
    }

    pub(crate) async fn add_session(db: &Db, id: &str) {
        let alice = user::find(db, "alice").await.unwrap().unwrap();
        let session = session::NewSession {
            id: id.into(),
            user_id: alice.id,
            token_version: alice.token_version,
            scope: "me".into(),
            created_at: 1,
            expires_at: i64::MAX,
            auth_time: 1,
            amr: "pwd".into(),
            client_addr: None,
            user_agent: None,
        };
        let started = session::start(db, session, 1000).await.unwrap();
        assert_eq!(started, session::Started::Started);
    }

    #[tokio::test]
    async fn direct_reads_agree_with_seaorm_and_see_every_commit_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = database_with_a_session(dir.path()).await;
        let reads = HotReads::new(&db);
        assert!(reads.is_direct());

        let direct = reads.user_in_session("alice", "s1").await.unwrap();
        assert!(direct.is_some());
        let pooled = session::find_user_in_session(&db, "alice", "s1")
            .await
            .unwrap();
        assert_eq!(direct, pooled);
        assert_eq!(
            reads.user("alice").await.unwrap(),
            user::find(&db, "alice").await.unwrap()
        );
        for (user, sid) in [
            ("bob", "s1"),
            ("alice", "s2"),
            ("al\0ice", "s1"),
            ("alice", "s\0"),
        ] {
            assert_eq!(
                reads.user_in_session(user, sid).await.unwrap(),
                None,
                "{user:?} {sid:?}"
            );
        }
        assert_eq!(reads.user("bob").await.unwrap(), None);

        // Written through the pool (as a request or the CLI would), read at once.
        let disable = UserChanges {
            disabled: Some(true),
            ..UserChanges::default()
        };
        assert!(user::change(&db, "alice", disable).await.unwrap());
        let alice = reads.user("alice").await.unwrap().unwrap();
        assert!(alice.disabled);
        assert_eq!(alice.token_version, 1);
        assert_eq!(
            reads.user_in_session("alice", "s1").await.unwrap(),
            None,
            "the session ended"
        );
    }

    #[tokio::test]
    async fn databases_another_connection_cannot_see_use_the_pool() {
        let db = connect("sqlite::memory:").await.unwrap();
        assert!(!HotReads::new(&db).is_direct());
    }
}
