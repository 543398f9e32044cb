//! Starting the real app for a test, and the requests tests make of it.
//!
//! Every test gets its own database: a temp SQLite file, or, when the suite runs with
//! `DATABASE_URL=postgres://...`, a fresh schema on that server ([`TestDb`]).

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse::{
    app::App,
    config::{ServeArgs, Settings},
    db::{self, Db},
};
use jsonwebtoken::{Algorithm, EncodingKey};
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use serde_json::Value;
use tempfile::TempDir;

/// The signing key of every test app unless a test sets another.
pub const TEST_SECRET: &str = "test-secret-key-that-is-long-enough-0123456789";

/// PostgreSQL of the test machines (trust auth), database `test`.
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A test's own database, removed when dropped.
pub struct TestDb {
    /// The `DATABASE_URL` of this database.
    pub url: String,
    backing: Backing,
}

enum Backing {
    Sqlite(TempDir),
    /// Dropped with the database: drops the schema.
    Postgres {
        _schema: PgSchema,
    },
}

impl TestDb {
    /// The suite's backend: a fresh PostgreSQL schema when the test process has
    /// `DATABASE_URL=postgres://...`, else a temp SQLite file.
    pub async fn new() -> Self {
        match suite_postgres_url() {
            Some(server) => Self::postgres_on(&server).await,
            None => Self::sqlite(),
        }
    }

    /// A temp SQLite file whatever the suite's backend, for tests about SQLite itself.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self {
            url: sqlite_url(dir.path()),
            backing: Backing::Sqlite(dir),
        }
    }

    /// A fresh schema on PostgreSQL whatever the suite's backend: the suite's server, else
    /// the machine's on 127.0.0.1:5432.
    pub async fn postgres() -> Self {
        Self::postgres_on(&suite_postgres_url().unwrap_or_else(|| POSTGRES_URL.to_owned())).await
    }

    async fn postgres_on(server: &str) -> Self {
        let schema = PgSchema::create(server).await;
        let separator = if server.contains('?') { '&' } else { '?' };
        Self {
            url: format!(
                "{server}{separator}options=-c%20search_path%3D{}",
                schema.name
            ),
            backing: Backing::Postgres { _schema: schema },
        }
    }

    /// The SQLite file's directory; `None` on PostgreSQL.
    pub fn sqlite_dir(&self) -> Option<&Path> {
        match &self.backing {
            Backing::Sqlite(dir) => Some(dir.path()),
            Backing::Postgres { .. } => None,
        }
    }

    /// Settings for this database with [`TEST_SECRET`].
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::for_database(self.url.clone());
        settings.secret_key = Some(SecretString::from(TEST_SECRET));
        settings
    }
}

/// The PostgreSQL server the whole suite runs against, if `DATABASE_URL` names one.
fn suite_postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
}

/// `sqlite://<dir>/gatehouse.db?mode=rwc`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("gatehouse.db").display())
}

/// A schema of its own on PostgreSQL, so tests never see each other's tables; dropped
/// again with the guard.
struct PgSchema {
    server: String,
    name: String,
}

impl PgSchema {
    async fn create(server: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let name = format!(
            "gatehouse_test_{}_{nanos}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = db::connect(server)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {server}: {e}"));
        admin
            .execute_unprepared(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create schema");
        let _ = admin.close().await;
        Self {
            server: server.to_owned(),
            name,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime: clean up on a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                if let Ok(admin) = db::connect(&server).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP SCHEMA {name} CASCADE"))
                        .await;
                    let _ = admin.close().await;
                }
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Db,
    pub settings: Settings,
    /// The database this app created for itself, removed with the app.
    pub test_db: Option<TestDb>,
}

/// A fresh database with the demo users, default settings and [`TEST_SECRET`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let test_db = TestDb::new().await;
    let mut settings = test_db.settings();
    configure(&mut settings);
    let mut app = start(settings).await;
    app.test_db = Some(test_db);
    app
}

/// Starts the app on `settings` (demo users seeded) on a free port; the database is the
/// caller's to keep.
pub async fn start(settings: Settings) -> TestApp {
    let serve = ServeArgs {
        bind: "127.0.0.1:0".parse().expect("address"),
        demo: true,
    };
    let app = App::build(&settings, &serve).await.expect("app starts");
    let address = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped());
    let db = db::connect(&settings.database_url)
        .await
        .expect("test db connection");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        address,
        client,
        db,
        settings,
        test_db: None,
    }
}

/// `gatehouse` with an empty environment, so nothing of the test process (a suite-wide
/// `DATABASE_URL` above all) reaches the child unless the test sets it.
pub fn gatehouse_command() -> Command {
    let mut command = Command::new(BIN);
    command.env_clear();
    command
}

/// Runs `command` to its end, failing the test if it takes longer than `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A `gatehouse serve` process of the real binary, killed when dropped.
pub struct ServerProcess {
    pub address: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `gatehouse serve --bind 127.0.0.1:0` with `env` (nothing else of the test's
    /// environment) and waits for it to listen; on failure, the whole log.
    pub fn spawn(env: &[(&str, &str)]) -> Result<Self, String> {
        Self::spawn_with(&[], env)
    }

    /// [`ServerProcess::spawn`] with more arguments to `serve`, e.g. `--demo`.
    pub fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        let mut child = gatehouse_command()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gatehouse serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split_once("gatehouse listening addr=")
                    .map(|(_, a)| a.trim().to_owned())
                {
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let start = Instant::now();
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(Self {
                    address: format!("http://{addr}"),
                    child,
                    log,
                });
            }
            if child.try_wait().expect("wait").is_some()
                || start.elapsed() > Duration::from_secs(30)
            {
                let _ = child.kill();
                let _ = child.wait();
                // Let the reader drain what is left.
                std::thread::sleep(Duration::from_millis(100));
                let log = log.lock().expect("log lock").clone();
                return Err(log);
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// SIGKILL, as a crash or the OOM killer would; the log stays readable.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_form("/token", &[("username", username), ("password", password)])
            .await
    }

    /// `POST path` with `fields` as an urlencoded form.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("form request")
    }

    /// `POST /token` with a raw body of `content_type`.
    pub async fn post_token_body(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/token"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("token request")
    }

    /// A token for a user whose login must succeed.
    pub async fn token(&self, username: &str, password: &str) -> String {
        let resp = self.login(username, password).await;
        assert_eq!(resp.status(), 200, "login of {username} failed");
        let body: Value = resp.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// `GET path` with `Authorization: <authorization>` when given.
    pub async fn get(&self, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(value) = authorization {
            req = req.header("Authorization", value);
        }
        req.send().await.expect("request")
    }

    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.get("/users/me/", Some(&format!("Bearer {token}")))
            .await
    }
}

/// A token with exactly this header and claims, signed with HS256 and `secret`.
pub fn forge(header: &Value, claims: &Value, secret: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    )
    .expect("sign");
    format!("{message}.{signature}")
}

pub fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Decodes one base64url JWT segment as JSON.
pub fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

/// Status, body and the named headers of a response, for whole-response assertions.
pub async fn parts(resp: reqwest::Response, headers: &[&str]) -> (u16, Value, Vec<Option<String>>) {
    let status = resp.status().as_u16();
    let values = headers
        .iter()
        .map(|h| {
            resp.headers()
                .get(*h)
                .map(|v| v.to_str().expect("ascii header").to_owned())
        })
        .collect();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body, values)
}

impl TestApp {
    /// `host:port` of the app, for raw TCP clients.
    pub fn host_port(&self) -> &str {
        self.address.trim_start_matches("http://")
    }

    /// Sends `request` as raw bytes and reads until the server closes the connection (or
    /// 10 s pass); returns what it answered.
    pub async fn raw_exchange(&self, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.host_port())
            .await
            .expect("connect");
        stream.write_all(request).await.expect("write request");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        );
        let _ = read.await.expect("server answered and closed within 10 s");
        String::from_utf8_lossy(&answer).into_owned()
    }
}

/// The `gatehouse` binary serving on a free port, with `envs` on top of a clean
/// environment for `DATABASE_URL` and the secret key.
pub struct ServingBinary {
    pub child: std::process::Child,
    pub url: String,
    pub port: u16,
}

impl ServingBinary {
    pub async fn start(database_url: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("port")
            .port();
        let mut cmd = gatehouse_command();
        cmd.args(args)
            .env("DATABASE_URL", database_url)
            .env("GATEHOUSE_BIND", format!("127.0.0.1:{port}"))
            .env("SECRET_KEY", TEST_SECRET)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (name, value) in envs {
            cmd.env(name, value);
        }
        let mut child = cmd.spawn().expect("run gatehouse");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("{url}/openapi.json"))
                .send()
                .await
                .is_ok()
            {
                return Self { child, url, port };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("gatehouse did not start listening on port {port}");
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal gatehouse");
    }

    /// Waits for the process to exit; its status and log.
    pub async fn wait(self) -> (std::process::ExitStatus, String) {
        let out = tokio::task::spawn_blocking(move || self.child.wait_with_output())
            .await
            .expect("join")
            .expect("wait for gatehouse");
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}
