//! Database faults: the service starts with a clear error, or answers 503 with a generic
//! body and logs the cause; never a panic, a hang, a 500 with internals, or a half-written
//! user.
//!
//! The file faults (missing, read-only, corrupt, locked, full) are about SQLite files and
//! use SQLite whatever the suite's backend; the outage tests are about PostgreSQL and put
//! a proxy between the service and the machine's server, which other tests share and
//! must not be stopped.

use std::{
    io::Write,
    path::Path,
    process::{Output, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{json, Value};
use tokio::{
    net::{TcpSocket, TcpStream},
    sync::watch,
};

use crate::helpers::{
    gatehouse_cli, gatehouse_command, output_within, parts, start, ServingBinary, TestDb,
    TEST_SECRET,
};
use crate::metrics::{samples, scrape_text, value};

/// What every database failure answers, whatever the cause.
fn unavailable() -> Value {
    json!({"detail": "Service unavailable, retry later"})
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `gatehouse serve` on `url` must exit 1 within `limit` with `message` on stderr.
fn serve_fails(url: &str, limit: Duration, message: &str) -> Duration {
    let started = Instant::now();
    let out = output_within(
        gatehouse_command()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("DATABASE_URL", url)
            .env("SECRET_KEY", TEST_SECRET),
        "",
        limit,
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(message), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    took
}

fn sqlite_url_of(path: &Path, mode: Option<&str>) -> String {
    match mode {
        Some(mode) => format!("sqlite://{}?mode={mode}", path.display()),
        None => format!("sqlite://{}", path.display()),
    }
}

/// A small tmpfs of its own, unmounted when dropped. Mounting needs root (CAP_SYS_ADMIN),
/// as CI has; without it the test fails rather than passing untested.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "these fault tests mount a tmpfs and need root with CAP_SYS_ADMIN: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount_read_only(&self) {
        let out = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A migrated SQLite database at `path`, with `users` added through the CLI.
fn sqlite_database(path: &Path, users: &[&str]) -> String {
    let create = sqlite_url_of(path, Some("rwc"));
    let out = gatehouse_cli(&create, &["migrate"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    for user in users {
        let out = gatehouse_cli(
            &create,
            &["user", "add", user],
            &format!("{user}-pass-phrase\n"),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    sqlite_url_of(path, None)
}

/// A server on `url`, a database that cannot be written: carol logs in, `user add` fails
/// cleanly with nothing half-written, and a failed login (counted in the database, so a
/// write) answers the generic 503.
async fn serves_reads_and_refuses_writes(url: &str) -> (ServingBinary, reqwest::Client) {
    let server = ServingBinary::start(url, &["serve"], &[]).await;
    let client = reqwest::Client::new();
    assert_eq!(
        server
            .login(&client, "carol", "carol-pass-phrase")
            .await
            .status(),
        200
    );
    let add = gatehouse_cli(url, &["user", "add", "dave"], "dave-pass-phrase\n");
    assert_eq!(add.status.code(), Some(1));
    assert_eq!(
        stderr(&add),
        "error: database error: Execution Error: error returned from database: (code: 8) attempt to write a readonly database\n"
    );
    assert!(!listed(url, "dave"), "no half-written user");
    failed_login_is_unavailable(&client, &server, "attempt to write a readonly database").await;
    (server, client)
}

/// Whether `gatehouse user list` on `url` lists `username`.
fn listed(url: &str, username: &str) -> bool {
    let out = gatehouse_cli(url, &["user", "list"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|line| line.split_whitespace().next() == Some(username))
}

/// A wrong password for carol answers the generic 503, and the server logs `cause`.
async fn failed_login_is_unavailable(
    client: &reqwest::Client,
    server: &ServingBinary,
    cause: &str,
) {
    let resp = server.login(client, "carol", "wrong-pass-phrase").await;
    assert_eq!(
        parts(resp, &["retry-after"]).await,
        (503, unavailable(), vec![Some("1".to_owned())])
    );
    assert!(
        server
            .logged(|l| l.contains("database failure") && l.contains(cause))
            .await,
        "{}",
        server.log()
    );
}

#[test]
fn a_configured_sqlite_file_that_is_missing_is_refused_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    for mode in [None, Some("rw")] {
        serve_fails(
            &sqlite_url_of(&path, mode),
            Duration::from_secs(10),
            &format!(
                "error: cannot open the database: the SQLite database {} does not exist (add ?mode=rwc to the URL to create it)",
                path.display()
            ),
        );
        assert!(!path.exists(), "no empty database was created");
    }
    let missing_dir = dir.path().join("no-such-dir").join("x.db");
    serve_fails(
        &sqlite_url_of(&missing_dir, Some("rwc")),
        Duration::from_secs(10),
        &format!(
            "error: cannot open the database: the directory {} of the SQLite database does not exist",
            dir.path().join("no-such-dir").display()
        ),
    );
}

#[test]
fn the_documented_default_database_is_created_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = output_within(
        gatehouse_command()
            .arg("migrate")
            .env("SECRET_KEY", TEST_SECRET)
            .current_dir(dir.path()),
        "",
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("gatehouse.db").is_file());
}

#[test]
fn a_corrupt_sqlite_file_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let garbage: Vec<u8> = (0..16384u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    serve_fails(
        &sqlite_url_of(&path, None),
        Duration::from_secs(10),
        "error: cannot open the database: Connection Error: error returned from database: (code: 26) file is not a database",
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "left as it was");
}

/// Checkpoints the WAL into the main file and closes, as the last connection of a clean
/// shutdown does: only the main file is left.
async fn close_cleanly(url: &str, path: &Path) {
    let db = gatehouse::db::connect(url).await.unwrap();
    db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .unwrap();
    db.close().await.unwrap();
    assert!(!wal_of(path).exists(), "no write-ahead log left");
}

fn wal_of(path: &Path) -> std::path::PathBuf {
    path.with_extension("db-wal")
}

#[tokio::test]
async fn a_cleanly_closed_database_on_a_read_only_file_system_stops_the_start_with_a_clear_error() {
    // A read-only mount stops root too, where file permissions would not.
    let fs = Tmpfs::mount("4m");
    let path = fs.path().join("gatehouse.db");
    let url = sqlite_database(&path, &["carol"]);
    close_cleanly(&url, &path).await;
    fs.remount_read_only();
    // Without its -shm file, SQLite cannot open a WAL database it cannot write.
    tokio::task::spawn_blocking(move || serve_fails(
        &url,
        Duration::from_secs(10),
        "error: cannot open the database: Connection Error: error returned from database: (code: 14) unable to open database file (SQLite needs to write the file and, for its write-ahead log, the directory it is in)",
    )).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_left_with_its_write_ahead_log_on_a_read_only_file_system_serves_reads_and_refuses_writes(
) {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("gatehouse.db");
    let live_url = sqlite_database(&live, &["carol"]);
    // The files as a crash leaves them: main file, -wal and -shm, copied while open.
    let open = gatehouse::db::connect(&live_url).await.unwrap();
    open.execute_unprepared("UPDATE users SET full_name = 'Carol' WHERE username = 'carol'")
        .await
        .unwrap();
    let fs = Tmpfs::mount("4m");
    for suffix in ["db", "db-wal", "db-shm"] {
        std::fs::copy(
            live.with_extension(suffix),
            fs.path().join("gatehouse").with_extension(suffix),
        )
        .unwrap();
    }
    drop(open);
    fs.remount_read_only();
    let url = sqlite_url_of(&fs.path().join("gatehouse.db"), None);

    let (server, _client) = serves_reads_and_refuses_writes(&url).await;
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_database_file_serves_reads_and_refuses_writes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatehouse.db");
    let url = sqlite_database(&path, &["carol"]);
    let chattr = |flag: &str| {
        let out = std::process::Command::new("chattr")
            .arg(flag)
            .arg(&path)
            .output()
            .expect("chattr (e2fsprogs)");
        assert!(out.status.success(), "chattr {flag}: {}", stderr(&out));
    };
    // `chattr +i` makes the file read-only for root too, unlike chmod.
    chattr("+i");
    struct Mutable<'a>(&'a dyn Fn(&str));
    impl Drop for Mutable<'_> {
        fn drop(&mut self) {
            (self.0)("-i");
        }
    }
    let _restore = Mutable(&chattr);

    let (server, client) = serves_reads_and_refuses_writes(&url).await;
    assert_eq!(
        server
            .login(&client, "carol", "carol-pass-phrase")
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_writer_fails_writes_after_the_busy_timeout_and_keeps_serving_reads(
) {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_database(&dir.path().join("gatehouse.db"), &["carol"]);
    let server = ServingBinary::start(&url, &["serve"], &[]).await;
    let client = reqwest::Client::new();
    let body: serde_json::Value = server
        .login(&client, "carol", "carol-pass-phrase")
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();

    // Another process's writer: a transaction holding SQLite's write lock far beyond the
    // service's 5 s busy timeout.
    let other = gatehouse::db::connect(&url).await.unwrap();
    let txn = other.begin().await.unwrap();
    txn.execute_unprepared("UPDATE users SET full_name = 'held' WHERE username = 'carol'")
        .await
        .unwrap();

    let started = Instant::now();
    let add = tokio::task::spawn_blocking({
        let url = url.clone();
        move || gatehouse_cli(&url, &["user", "add", "dave"], "dave-pass-phrase\n")
    })
    .await
    .unwrap();
    let waited = started.elapsed();
    assert_eq!(add.status.code(), Some(1), "{}", stderr(&add));
    assert!(
        stderr(&add).contains("(code: 5) database is locked"),
        "{}",
        stderr(&add)
    );
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(20),
        "waits out the busy timeout, then gives up: {waited:?}"
    );

    // WAL: readers never wait for the writer. (A login is no read: it starts a session.)
    let read = Instant::now();
    let resp = client
        .get(server.at("/users/me/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        read.elapsed() < Duration::from_secs(3),
        "{:?}",
        read.elapsed()
    );

    // A failed login is counted in the database: it waits out the busy timeout, then 503.
    let counted = Instant::now();
    failed_login_is_unavailable(&client, &server, "database is locked").await;
    assert!(
        counted.elapsed() >= Duration::from_secs(4) && counted.elapsed() < Duration::from_secs(15),
        "{:?}",
        counted.elapsed()
    );

    txn.rollback().await.unwrap();
    assert!(!listed(&url, "dave"), "no half-written user");
    let add = gatehouse_cli(&url, &["user", "add", "dave"], "dave-pass-phrase\n");
    assert!(add.status.success(), "{}", stderr(&add));
    assert_eq!(
        server
            .login(&client, "dave", "dave-pass-phrase")
            .await
            .status(),
        200
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_write_cleanly_and_loses_nothing_committed() {
    let fs = Tmpfs::mount("2m");
    let path = fs.path().join("gatehouse.db");
    let url = sqlite_database(&path, &["carol"]);
    let server = ServingBinary::start(&url, &["serve"], &[]).await;

    // Fill the file system to the last block.
    let filler_path = fs.path().join("filler");
    {
        let mut filler = std::fs::File::create(&filler_path).unwrap();
        let block = vec![0u8; 4096];
        while filler.write_all(&block).is_ok() {}
        let _ = filler.sync_all();
    }

    // The WAL may still have room for a few commits; keep adding until the disk says no.
    let mut added = vec![];
    let mut failure = None;
    for i in 0..200 {
        let name = format!("user{i}");
        let out = tokio::task::spawn_blocking({
            let (url, name) = (url.clone(), name.clone());
            move || {
                gatehouse_cli(
                    &url,
                    &["user", "add", &name],
                    &format!("{name}-pass-phrase\n"),
                )
            }
        })
        .await
        .unwrap();
        if out.status.success() {
            added.push(name);
        } else {
            failure = Some((name, out));
            break;
        }
    }
    let (failed, out) = failure.expect("a full disk refuses a write");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("database or disk is full")
            || stderr(&out).contains("disk I/O error"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));

    let client = reqwest::Client::new();
    let resp = server.login(&client, "carol", "carol-pass-phrase").await;
    let (status, body, _) = parts(resp, &[]).await;
    assert!(
        status == 200 || (status == 503 && body == unavailable()),
        "{status} {body}"
    );

    std::fs::remove_file(&filler_path).unwrap();
    for name in added.iter().chain([&"carol".to_owned()]) {
        let resp = server
            .login(&client, name, &format!("{name}-pass-phrase"))
            .await;
        assert_eq!(resp.status(), 200, "committed user {name} is intact");
    }
    assert_eq!(
        server
            .login(&client, &failed, &format!("{failed}-pass-phrase"))
            .await
            .status(),
        401,
        "the failed add left no user behind"
    );
    let add = gatehouse_cli(
        &url,
        &["user", "add", &failed],
        &format!("{failed}-pass-phrase\n"),
    );
    assert!(add.status.success(), "with space again: {}", stderr(&add));
    assert_eq!(integrity_check(&url).await, "ok");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

async fn integrity_check(url: &str) -> String {
    let db = gatehouse::db::connect(url).await.unwrap();
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

/// `kill -9` of `user add` at any moment, and of a server, loses no user whose add
/// reported success and leaves no half-written one (SQLite: WAL with synchronous=FULL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_stream_of_user_adds_loses_no_committed_user() {
    let db = TestDb::new().await;
    let url = db.url.clone();
    let out = gatehouse_cli(&url, &["migrate"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut server = ServingBinary::start(&url, &["serve"], &[]).await;

    let (committed, killed) = tokio::task::spawn_blocking(move || {
        let add = |name: &str| {
            let mut child = gatehouse_command()
                .args(["user", "add", name])
                .env("DATABASE_URL", &url)
                .env("SECRET_KEY", TEST_SECRET)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{name}-pass-phrase\n").as_bytes())
                .unwrap();
            child
        };
        let succeeded = |name: &str, out: &Output| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout) == format!("created user {name}\n")
        };
        // How long one whole add takes here, to spread the kills over all of it.
        let started = Instant::now();
        let out = add("stream0").wait_with_output().unwrap();
        assert!(succeeded("stream0", &out), "{}", stderr(&out));
        let whole = started.elapsed();
        let mut committed = vec!["stream0".to_owned()];
        let mut killed = vec![];
        for i in 1..=32u32 {
            let name = format!("stream{i}");
            let mut child = add(&name);
            if i % 2 == 1 {
                // SIGKILL at 0 %, 7 %, ... 105 % of an add: start-up, hashing, the insert.
                std::thread::sleep(whole * ((i * 7) % 112) / 100);
                let _ = child.kill();
            }
            let out = child.wait_with_output().unwrap();
            if succeeded(&name, &out) {
                committed.push(name);
            } else {
                assert!(
                    out.status.code().is_none(),
                    "only killed adds fail: {}",
                    stderr(&out)
                );
                killed.push(name);
            }
        }
        (committed, killed)
    })
    .await
    .unwrap();
    assert!(committed.len() >= 17, "{committed:?}");
    assert!(!killed.is_empty(), "some adds were killed mid-way");

    server.kill();
    let app = start(db.settings()).await;
    for name in &committed {
        assert_eq!(
            app.login(name, &format!("{name}-pass-phrase"))
                .await
                .status(),
            200,
            "committed user {name} survived"
        );
    }
    for name in &killed {
        // All or nothing: a killed add either committed whole, or left no row.
        let present = gatehouse::db::user::find(&app.db, name)
            .await
            .unwrap()
            .is_some();
        let status = app
            .login(name, &format!("{name}-pass-phrase"))
            .await
            .status();
        assert_eq!(status, if present { 200 } else { 401 }, "{name}");
    }
    if db.sqlite_dir().is_some() {
        assert_eq!(integrity_check(&db.url).await, "ok");
    }
}

/// A TCP proxy in front of the machine's PostgreSQL that a test can take down (refusing
/// connections, as a stopped server does) and bring back, or whose open connections it
/// can cut (as a restart does).
struct PgProxy {
    port: u16,
    state: watch::Sender<ProxyState>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
struct ProxyState {
    up: bool,
    /// Bumped to cut every open connection.
    generation: u64,
}

impl PgProxy {
    async fn start() -> Self {
        let listener = reusable_listener(0).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (state, rx) = watch::channel(ProxyState {
            up: true,
            generation: 0,
        });
        tokio::spawn(proxy(port, listener, rx));
        Self { port, state }
    }

    /// `url` (on 127.0.0.1:5432) through this proxy.
    fn url(&self, url: &str) -> String {
        url.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", self.port), 1)
    }

    fn down(&self) {
        self.state.send_modify(|s| {
            s.up = false;
            s.generation += 1;
        });
    }

    fn up(&self) {
        self.state.send_modify(|s| s.up = true);
    }

    fn cut(&self) {
        self.state.send_modify(|s| s.generation += 1);
    }
}

fn reusable_listener(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(([127, 0, 0, 1], port).into())?;
    socket.listen(64)
}

async fn proxy(port: u16, first: tokio::net::TcpListener, mut rx: watch::Receiver<ProxyState>) {
    let mut listener = Some(first);
    loop {
        let Some(open) = listener.take() else {
            // Down: nothing listens, so connections are refused, until up again.
            while !rx.borrow_and_update().up {
                if rx.changed().await.is_err() {
                    return;
                }
            }
            listener = reusable_listener(port).ok();
            continue;
        };
        loop {
            tokio::select! {
                accepted = open.accept() => {
                    if let Ok((client, _)) = accepted {
                        tokio::spawn(forward(client, rx.clone()));
                    }
                }
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if !rx.borrow_and_update().up {
                        break;
                    }
                }
            }
        }
    }
}

async fn forward(mut client: TcpStream, mut rx: watch::Receiver<ProxyState>) {
    let generation = rx.borrow_and_update().generation;
    let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await else {
        return;
    };
    let cut = async {
        while rx.borrow_and_update().generation == generation {
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = cut => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_at_start_is_a_clear_error_within_seconds() {
    let proxy = PgProxy::start().await;
    let db = TestDb::postgres().await;
    proxy.down();
    let url = proxy.url(&db.url);
    let took = tokio::task::spawn_blocking(move || {
        serve_fails(
            &url,
            Duration::from_secs(20),
            "error: cannot open the database: Connection Error: pool timed out while waiting for an open connection (no connection within 5 s: is the database server running and reachable?)",
        )
    })
    .await
    .unwrap();
    assert!(took < Duration::from_secs(10), "{took:?}");

    // A server that accepts but never answers is bounded by the same timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/test",
        silent.local_addr().unwrap().port()
    );
    let took = tokio::task::spawn_blocking(move || {
        serve_fails(
            &url,
            Duration::from_secs(20),
            "error: cannot open the database: Connection Error: pool timed out while waiting for an open connection (no connection within 5 s: is the database server running and reachable?)",
        )
    })
    .await
    .unwrap();
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(silent);
}

/// One request of the background traffic: what came back and how long it took.
struct Outcome {
    status: u16,
    body: Value,
    retry_after: Option<String>,
    took: Duration,
}

async fn traffic(address: String, token: String, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let client = reqwest::Client::new();
    let mut outcomes = vec![];
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let started = Instant::now();
        let request = if i.is_multiple_of(4) {
            client
                .post(format!("{address}/token"))
                .form(&[("username", "johndoe"), ("password", "secret")])
        } else {
            client
                .get(format!("{address}/users/me/"))
                .bearer_auth(&token)
        };
        let resp = request.send().await.unwrap();
        let (status, body, headers) = parts(resp, &["retry-after"]).await;
        outcomes.push(Outcome {
            status,
            body,
            retry_after: headers.into_iter().next().flatten(),
            took: started.elapsed(),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_down_and_restarting_under_traffic_answers_503_then_recovers() {
    let proxy = PgProxy::start().await;
    let db = TestDb::postgres().await;
    let url = proxy.url(&db.url);
    let mut server = ServingBinary::start(&url, &["serve", "--demo"], &[]).await;
    let client = reqwest::Client::new();
    let resp = server.login(&client, "johndoe", "secret").await;
    assert_eq!(resp.status(), 200);
    let token = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let background = tokio::spawn(traffic(
        server.url.clone(),
        token.clone(),
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A restart: every open connection is cut, the server accepts again at once.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Down: connections are refused until it is back.
    proxy.down();
    for request in [
        client.get(server.at("/users/me/")).bearer_auth(&token),
        client
            .post(server.at("/token"))
            .form(&[("username", "johndoe"), ("password", "secret")]),
    ] {
        let started = Instant::now();
        let (status, body, headers) = parts(request.send().await.unwrap(), &["retry-after"]).await;
        assert_eq!(
            (status, body, headers),
            (503, unavailable(), vec![Some("1".to_owned())]),
            "while PostgreSQL is down"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    proxy.up();
    let back = Instant::now();
    loop {
        let resp = client
            .get(server.at("/users/me/"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            assert_eq!(resp.json::<Value>().await.unwrap()["username"], "johndoe");
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(15), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.login(&client, "johndoe", "secret").await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = background.await.unwrap();

    for o in &outcomes {
        assert!(
            o.status == 200
                || (o.status == 503
                    && o.body == unavailable()
                    && o.retry_after.as_deref() == Some("1")),
            "only 200 or the generic 503: {} {}",
            o.status,
            o.body
        );
        assert!(o.took < Duration::from_secs(10), "no hang: {:?}", o.took);
    }
    assert!(
        outcomes.iter().any(|o| o.status == 503),
        "traffic saw the outage"
    );
    assert_eq!(
        outcomes.last().map(|o| o.status),
        Some(200),
        "and the recovery"
    );

    let log = server.log();
    assert!(
        server.logged(|l| l.contains("database failure")).await,
        "cause logged: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("status=500"), "{log}");
    assert!(server.is_running(), "the outage did not stop the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_postgres_is_down_and_counts_the_database_errors() {
    let proxy = PgProxy::start().await;
    let db = TestDb::postgres().await;
    let mut settings = db.settings();
    settings.database_url = proxy.url(&db.url);
    settings.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let app = start(settings).await;
    let metrics = app.metrics_address.clone().unwrap();
    assert_eq!(app.get("/readyz", None).await.status(), 200);

    proxy.down();
    let started = Instant::now();
    let (status, body, headers) = parts(app.get("/readyz", None).await, &["retry-after"]).await;
    assert_eq!(
        (status, body, headers),
        (503, unavailable(), vec![Some("1".to_owned())]),
        "while PostgreSQL is down"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Liveness does not depend on the database: restarting would not help.
    assert_eq!(app.get("/healthz", None).await.status(), 200);

    let counted = samples(&scrape_text(&app.client, &metrics).await);
    for key in [
        "gatehouse_database_errors_total{}",
        "gatehouse_unavailable_responses_total{reason=database}",
        "gatehouse_http_requests_total{operation=readyz_readyz_get,status=503}",
    ] {
        assert_eq!(value(&counted, key), 1.0, "{key}");
    }

    proxy.up();
    let back = Instant::now();
    while app.get("/readyz", None).await.status() != 200 {
        assert!(back.elapsed() < Duration::from_secs(15), "not ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
