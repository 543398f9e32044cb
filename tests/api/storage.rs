//! The database: migrations, the generated signing key, PostgreSQL.

use gatehouse::db;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, Statement};

use crate::helpers::{spawn_app_with, start, TestDb};

async fn table_names(db: &db::Db) -> Vec<String> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Sqlite => "SELECT name AS t FROM sqlite_master WHERE type = 'table' ORDER BY name",
        _ => "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name",
    };
    db.query_all(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "t").unwrap())
        .filter(|t| !t.starts_with("sqlite_"))
        .collect()
}

async fn migrations_go_up_and_down(db: &db::Db) {
    Migrator::up(db, None).await.unwrap();
    assert_eq!(
        table_names(db).await,
        [
            "authorization_codes",
            "browser_sessions",
            "email_tokens",
            "known_clients",
            "legacy_refresh_tokens",
            "login_failures",
            "mail_outbox",
            "oauth_clients",
            "seaql_migrations",
            "server_secrets",
            "sessions",
            "signing_keys",
            "totp_factors",
            "totp_recovery_codes",
            "users"
        ]
    );
    Migrator::down(db, None).await.unwrap();
    assert_eq!(table_names(db).await, ["seaql_migrations"]);
    Migrator::up(db, None).await.unwrap();
    assert_eq!(
        table_names(db).await,
        [
            "authorization_codes",
            "browser_sessions",
            "email_tokens",
            "known_clients",
            "legacy_refresh_tokens",
            "login_failures",
            "mail_outbox",
            "oauth_clients",
            "seaql_migrations",
            "server_secrets",
            "sessions",
            "signing_keys",
            "totp_factors",
            "totp_recovery_codes",
            "users"
        ]
    );
}

#[tokio::test]
async fn sqlite_migrations_are_reversible() {
    // Each backend has its own test of the migrations, whatever the suite's backend.
    let test_db = TestDb::sqlite();
    let db = db::connect(&test_db.url).await.unwrap();
    migrations_go_up_and_down(&db).await;
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_a_busy_timeout() {
    // SQLite's own settings: SQLite whatever the suite's backend.
    let test_db = TestDb::sqlite();
    let db = db::connect(&test_db.url).await.unwrap();
    let pragma = |name: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .query_one(Statement::from_string(
                    db.get_database_backend(),
                    format!("PRAGMA {name}"),
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
                .unwrap()
        }
    };
    assert_eq!(pragma("journal_mode").await, "wal");
    assert_eq!(pragma("busy_timeout").await, "5000");
    assert_eq!(pragma("foreign_keys").await, "1");
    assert_eq!(pragma("synchronous").await, "2", "FULL");
}

#[tokio::test]
async fn generated_signing_key_is_stored_and_shared_by_restarts() {
    let first = spawn_app_with(|s| s.secret_key = None).await;
    let token = first.token("johndoe", "secret").await;

    let second = start(first.settings.clone()).await;
    assert_eq!(
        second.me(&token).await.status(),
        200,
        "the restarted service accepts the token"
    );
    let stored = db::server_secret::get_or_create(&first.db, "jwt_signing_key", || unreachable!())
        .await
        .unwrap();
    assert_eq!(stored.len(), 64, "256 bits, hex");
}

#[tokio::test]
async fn postgres_migrations_are_reversible() {
    let test_db = TestDb::postgres().await;
    let db = db::connect(&test_db.url).await.unwrap();
    migrations_go_up_and_down(&db).await;
}

#[tokio::test]
async fn postgres_serves_the_same_login() {
    let test_db = TestDb::postgres().await;
    let mut settings = test_db.settings();
    settings.secret_key = None;
    let app = start(settings).await;
    let token = app.token("johndoe", "secret").await;
    let me: serde_json::Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["username"], "johndoe");
    assert_eq!(app.login("johndoe", "wrong").await.status(), 401);
    assert_eq!(
        app.login("john\0doe", "secret").await.status(),
        401,
        "PostgreSQL text has no NUL"
    );

    // Each revoking update runs on PostgreSQL too.
    assert!(db::user::revoke_tokens(&app.db, "johndoe").await.unwrap());
    assert_eq!(app.me(&token).await.status(), 401, "revoked");
    assert!(db::user::set_disabled(&app.db, "johndoe", true)
        .await
        .unwrap());
    assert!(db::user::set_disabled(&app.db, "johndoe", false)
        .await
        .unwrap());
    let hash = gatehouse::auth::password::hash_password("new-secret").unwrap();
    assert!(db::user::change_password(&app.db, "johndoe", hash)
        .await
        .unwrap());
    let token = app.token("johndoe", "new-secret").await;
    assert_eq!(app.me(&token).await.status(), 200);
    let user = db::user::find(&app.db, "johndoe").await.unwrap().unwrap();
    assert_eq!((user.token_version, user.disabled), (3, false));
    assert!(!db::user::create(
        &app.db,
        db::user::NewUser {
            username: "johndoe".into(),
            email: None,
            full_name: None,
            hashed_password: "x".into(),
            disabled: false,
            username_skeleton: None,
            scopes: None,
        }
    )
    .await
    .unwrap());
}

/// One failure window's lifecycle, on `db`: reserved up to its limit, shared, reopened,
/// given back, cleared, purged.
async fn failure_windows_count_and_expire(db: &db::Db) {
    use gatehouse::db::login_failure::{clear, purge_before, release, reserve, windows, Scope};
    Migrator::up(db, None).await.unwrap();
    for now in [1000, 1001, 1030] {
        let reserved = reserve(db, Scope::Account, "johndoe", now, now - 60, 3).await;
        assert_eq!(reserved.unwrap(), Some(1000));
    }
    // The limit is reached: refused, and not counted.
    let refused = reserve(db, Scope::Account, "johndoe", 1031, 971, 3).await;
    assert_eq!(refused.unwrap(), None);
    reserve(db, Scope::Address, "10.0.0.1", 1030, 970, 3)
        .await
        .unwrap();
    let (account, address) = windows(db, "johndoe", "10.0.0.1").await.unwrap();
    assert_eq!(account.map(|w| (w.started_at, w.failures)), Some((1000, 3)));
    assert_eq!(address.map(|w| (w.started_at, w.failures)), Some((1030, 1)));
    // Giving one back makes room for one more.
    release(db, Scope::Account, "johndoe", 1000).await.unwrap();
    let again = reserve(db, Scope::Account, "johndoe", 1032, 972, 3).await;
    assert_eq!(again.unwrap(), Some(1000));
    // An attempt after the window has ended opens a new one, even at the limit; a give-back
    // for the old window leaves the new one alone.
    let reopened = reserve(db, Scope::Account, "johndoe", 1061, 1001, 3).await;
    assert_eq!(reopened.unwrap(), Some(1061));
    release(db, Scope::Account, "johndoe", 1000).await.unwrap();
    let (account, _) = windows(db, "johndoe", "10.0.0.1").await.unwrap();
    assert_eq!(account.map(|w| (w.started_at, w.failures)), Some((1061, 1)));
    clear(db, Scope::Account, "johndoe").await.unwrap();
    assert_eq!(windows(db, "johndoe", "10.0.0.1").await.unwrap().0, None);
    assert_eq!(purge_before(db, 1031).await.unwrap(), 1);
    assert_eq!(
        windows(db, "johndoe", "10.0.0.1").await.unwrap(),
        (None, None)
    );
}

#[tokio::test]
async fn sqlite_counts_failure_windows() {
    let test_db = TestDb::sqlite();
    let db = db::connect(&test_db.url).await.unwrap();
    failure_windows_count_and_expire(&db).await;
}

#[tokio::test]
async fn postgres_counts_failure_windows() {
    let test_db = TestDb::postgres().await;
    let db = db::connect(&test_db.url).await.unwrap();
    failure_windows_count_and_expire(&db).await;
}

#[tokio::test]
async fn the_scopes_migration_is_reversible_and_gives_existing_users_me_and_items() {
    let test_db = TestDb::new().await;
    let db = gatehouse::app::open_database(&test_db.settings())
        .await
        .unwrap();
    let root = db::user::NewUser {
        username: "root".into(),
        email: None,
        full_name: None,
        hashed_password: "x".into(),
        disabled: false,
        username_skeleton: None,
        scopes: Some("admin".into()),
    };
    db::user::create(&db, root).await.unwrap();

    // Down to before the scopes migration (and the ones after it): the column goes, the
    // users stay.
    let migrations = Migrator::migrations();
    let scopes = migrations
        .iter()
        .position(|m| m.name() == "m20261130_000005_add_user_scopes")
        .unwrap();
    let steps = u32::try_from(migrations.len() - scopes).unwrap();
    Migrator::down(&db, Some(steps)).await.unwrap();
    let backend = db.get_database_backend();
    let count = db
        .query_one(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM users",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count.try_get::<i64>("", "n").unwrap(), 1);
    assert!(db
        .query_all(Statement::from_string(backend, "SELECT scopes FROM users"))
        .await
        .is_err());

    // Up again: a user from before scopes existed holds what the JWT chapter needs.
    Migrator::up(&db, None).await.unwrap();
    let root = db::user::find(&db, "root").await.unwrap().unwrap();
    assert_eq!(root.scopes, "me items");
}

/// Runs `sql` with `values`, written with `?` placeholders, on either backend.
async fn execute(db: &db::Db, sql: &str, values: Vec<sea_orm::Value>) {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            let mut n = 0;
            sql.chars()
                .map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("${n}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        }
        _ => sql.to_owned(),
    };
    db.execute(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
}

#[tokio::test]
async fn refresh_tokens_issued_before_the_bounded_sessions_migration_keep_their_meaning() {
    use gatehouse::auth::refresh_token::hash_legacy_refresh_token;
    let test_db = TestDb::new().await;
    let conn = db::connect(&test_db.url).await.unwrap();
    let migrations = Migrator::migrations();
    let before = migrations
        .iter()
        .position(|m| m.name() == "m20261206_000007_bounded_sessions")
        .unwrap();
    Migrator::up(&conn, Some(u32::try_from(before).unwrap()))
        .await
        .unwrap();
    // carol, with two sessions as the old schema kept them: each rotated once, its first
    // refresh token spent and its second current, both stored as hashes.
    let hash = gatehouse::auth::password::hash_password("carol-pw").unwrap();
    let created = chrono::Utc::now();
    execute(
        &conn,
        "INSERT INTO users (username, hashed_password, disabled, token_version, scopes, \
         created_at, updated_at) VALUES ('carol', ?, false, 0, 'me items', ?, ?)",
        vec![hash.into(), created.into(), created.into()],
    )
    .await;
    let carol_id: i32 = conn
        .query_one(Statement::from_string(
            conn.get_database_backend(),
            "SELECT id FROM users WHERE username = 'carol'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "id")
        .unwrap();
    let now = crate::helpers::now();
    for (sid, created) in [
        ("legacy-session-0000001", now - 20),
        ("legacy-session-0000002", now - 10),
    ] {
        execute(
            &conn,
            "INSERT INTO sessions (id, user_id, scope, generation, created_at, last_used_at, \
             expires_at) VALUES (?, ?, 'me items', 1, ?, ?, ?)",
            vec![
                sid.into(),
                carol_id.into(),
                created.into(),
                created.into(),
                (now + 86_400).into(),
            ],
        )
        .await;
        for (generation, spent_at) in [(0i64, Some(now - 5)), (1, None)] {
            execute(
                &conn,
                "INSERT INTO refresh_tokens (token_hash, session_id, generation, expires_at, \
                 spent_at) VALUES (?, ?, ?, ?, ?)",
                vec![
                    hash_legacy_refresh_token(&format!("{sid}-{generation}")).into(),
                    sid.into(),
                    generation.into(),
                    (now + 86_400).into(),
                    spent_at.into(),
                ],
            )
            .await;
        }
    }

    let app = start(test_db.settings()).await;
    let sessions = db::session::Entity::find()
        .order_by_asc(db::session::Column::Seq)
        .all(&app.db)
        .await
        .unwrap();
    let numbered: Vec<(&str, i64, i64)> = sessions
        .iter()
        .map(|s| (s.id.as_str(), s.seq, s.token_version))
        .collect();
    assert_eq!(
        numbered,
        [
            ("legacy-session-0000001", 1, 0),
            ("legacy-session-0000002", 2, 0)
        ],
        "numbered by when they started, at their user's version"
    );
    let refresh = |token: String| {
        let app = &app;
        async move {
            let resp = app
                .post_form(
                    "/token",
                    &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                )
                .await;
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, body)
        }
    };
    let reused = serde_json::json!({
        "error": "invalid_grant",
        "error_description": "The refresh token was already used; the session is ended"
    });

    // The current legacy token rotates into a token of today's form, once.
    let (status, body) = refresh("legacy-session-0000001-1".into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 83);
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.me(&access).await.status(), 200);
    assert_eq!(
        refresh("legacy-session-0000001-1".into()).await,
        (400, reused.clone())
    );
    assert_eq!(
        app.me(&access).await.status(),
        401,
        "the reuse ended the session"
    );

    // A legacy token spent before the migration is still recognised as spent.
    assert_eq!(
        refresh("legacy-session-0000002-0".into()).await,
        (400, reused)
    );
    let (status, _) = refresh("legacy-session-0000002-1".into()).await;
    assert_eq!(status, 400, "its session ended");
}

#[tokio::test]
async fn sqlite_signing_key_algorithm_migration_keeps_the_ed25519_keys_and_is_reversible() {
    signing_key_algorithm_migration(TestDb::sqlite()).await;
}

#[tokio::test]
async fn postgres_signing_key_algorithm_migration_keeps_the_ed25519_keys_and_is_reversible() {
    signing_key_algorithm_migration(TestDb::postgres().await).await;
}

/// `m20261209_000020_signing_key_algorithm` on `test_db`, with keys stored before it.
async fn signing_key_algorithm_migration(test_db: TestDb) {
    use gatehouse::auth::{
        keys::{Ed25519Key, RsaKey},
        token::JwtAlgorithm,
    };
    let conn = db::connect(&test_db.url).await.unwrap();
    let migrations = Migrator::migrations();
    let before = migrations
        .iter()
        .position(|m| m.name() == "m20261209_000020_signing_key_algorithm")
        .unwrap();
    Migrator::up(&conn, Some(u32::try_from(before).unwrap()))
        .await
        .unwrap();
    // Two Ed25519 keys as the old schema kept them: the first signing, the second next.
    let keys = [Ed25519Key::generate(), Ed25519Key::generate()];
    let now = chrono::Utc::now();
    let insert = "INSERT INTO signing_keys (generation, kid, algorithm, private_key, \
                  created_at, signs_from) VALUES (?, ?, 'EdDSA', ?, ?, ?)";
    for (generation, (key, signs_from)) in keys
        .iter()
        .zip([
            now - chrono::Duration::hours(1),
            now + chrono::Duration::hours(1),
        ])
        .enumerate()
    {
        let generation = i32::try_from(generation).unwrap() + 1;
        execute(
            &conn,
            insert,
            vec![
                generation.into(),
                key.kid().into(),
                key.to_pem().into(),
                now.into(),
                signs_from.into(),
            ],
        )
        .await;
    }
    let stored = |db: db::Db| async move {
        db::signing_key::all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.algorithm, row.generation, row.kid, row.private_key))
            .collect::<Vec<_>>()
    };
    let ed25519_rows: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let generation = i32::try_from(i).unwrap() + 1;
            (
                "EdDSA".to_owned(),
                generation,
                key.kid().to_owned(),
                key.to_pem(),
            )
        })
        .collect();

    // Up: the rows stay, under EdDSA, and RS256 has generations of its own.
    Migrator::up(&conn, None).await.unwrap();
    assert_eq!(stored(conn.clone()).await, ed25519_rows);
    let rsa = RsaKey::generate();
    let new_rsa = |kid: String| db::signing_key::NewKey {
        generation: 1,
        kid,
        algorithm: "RS256",
        private_key: rsa.to_pem(),
        signs_from: now,
    };
    assert!(
        db::signing_key::insert_if_absent(&conn, new_rsa(rsa.kid().to_owned()))
            .await
            .unwrap()
    );
    assert!(
        !db::signing_key::insert_if_absent(&conn, new_rsa("another".to_owned()))
            .await
            .unwrap(),
        "one key per generation of an algorithm"
    );
    // EdDSA signs with its old key and publishes both; RS256 with its own alone.
    let mut settings = test_db.settings();
    settings.jwt_algorithm = JwtAlgorithm::EdDsa;
    let eddsa = start(settings.clone()).await;
    let token = eddsa.token("johndoe", "secret").await;
    assert_eq!(crate::helpers::segment(&token, 0)["kid"], keys[0].kid());
    let published = |body: serde_json::Value| -> Vec<String> {
        body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        published(crate::jwks::jwks(&eddsa).await.1),
        [keys[0].kid(), keys[1].kid()]
    );
    settings.jwt_algorithm = JwtAlgorithm::Rs256;
    let rs256 = start(settings).await;
    assert_eq!(published(crate::jwks::jwks(&rs256).await.1), [rsa.kid()]);

    // Down: keyed by generation alone again, with the EdDSA rows only.
    let steps = u32::try_from(migrations.len() - before).unwrap();
    Migrator::down(&conn, Some(steps)).await.unwrap();
    let backend = conn.get_database_backend();
    let rows: Vec<(i32, String, String)> = conn
        .query_all(Statement::from_string(
            backend,
            "SELECT generation, kid, algorithm FROM signing_keys ORDER BY generation",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get("", "generation").unwrap(),
                row.try_get("", "kid").unwrap(),
                row.try_get("", "algorithm").unwrap(),
            )
        })
        .collect();
    let expected: Vec<(i32, String, String)> = ed25519_rows
        .iter()
        .map(|(alg, generation, kid, _)| (*generation, kid.clone(), alg.clone()))
        .collect();
    assert_eq!(rows, expected);
    let duplicate = conn
        .execute(Statement::from_string(
            backend,
            "INSERT INTO signing_keys (generation, kid, algorithm, private_key, created_at, \
             signs_from) SELECT 1, 'other', 'EdDSA', private_key, created_at, signs_from \
             FROM signing_keys WHERE generation = 1",
        ))
        .await;
    assert!(duplicate.is_err(), "generation is the primary key again");

    // And up again.
    Migrator::up(&conn, None).await.unwrap();
    assert_eq!(stored(conn.clone()).await, ed25519_rows);
}
