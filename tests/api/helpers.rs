//! Starting the real app for a test, and the requests tests make of it.
//!
//! Every test gets its own database: a temp SQLite file, or, when the suite runs with
//! `DATABASE_URL=postgres://...`, a fresh schema on that server ([`TestDb`]).

use std::{
    io::{BufRead, BufReader, Write},
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
    /// `http://<addr>` of the Prometheus listener, when `metrics_bind` is set.
    pub metrics_address: Option<String>,
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
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
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
        metrics_address,
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

/// Runs `command` to its end with `stdin` fed to it, failing the test if it takes longer
/// than `limit`.
pub fn output_within(command: &mut Command, stdin: &str, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse");
    // A child that exits without reading its input closes the pipe: not an error here.
    let _ = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes());
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

/// `gatehouse args...` on `database_url` with [`TEST_SECRET`], `stdin` fed to it; fails
/// the test if it runs for more than 30 s.
pub fn gatehouse_cli(database_url: &str, args: &[&str], stdin: &str) -> Output {
    output_within(
        gatehouse_command()
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("SECRET_KEY", TEST_SECRET),
        stdin,
        Duration::from_secs(30),
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_form("/token", &[("username", username), ("password", password)])
            .await
    }

    /// `POST /token` as if from `client`, named in `X-Forwarded-For` (for an app that
    /// trusts 127.0.0.0/8 as its proxy).
    pub async fn login_from(
        &self,
        client: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/token"))
            .header("X-Forwarded-For", client)
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("login request")
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

    /// The token response of a login asking for `scope`, which must succeed.
    pub async fn login_with_scope(&self, username: &str, password: &str, scope: &str) -> Value {
        let fields = [
            ("username", username),
            ("password", password),
            ("scope", scope),
        ];
        let resp = self.post_form("/token", &fields).await;
        assert_eq!(resp.status(), 200, "login of {username} failed");
        resp.json().await.expect("token json")
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

/// The `gatehouse` binary serving on a free port, killed when dropped. Its log is read as
/// it is written, so a test can look at it while the server runs.
pub struct ServingBinary {
    /// `None` once waited for.
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub port: u16,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ServingBinary {
    /// `gatehouse args...` on `database_url` with [`TEST_SECRET`] and `envs`, on a free
    /// port (`GATEHOUSE_BIND=127.0.0.1:0`), once it listens.
    pub async fn start(database_url: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut all = vec![("DATABASE_URL", database_url), ("SECRET_KEY", TEST_SECRET)];
        all.extend_from_slice(envs);
        Self::start_with_env(args, &all)
            .await
            .unwrap_or_else(|log| panic!("gatehouse did not start: {log}"))
    }

    /// `gatehouse args...` with exactly `env` (plus `RUST_LOG=info` and the bind address),
    /// once it listens; if it exits or is not listening within 30 s, its log.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        let mut child = gatehouse_command()
            .args(args)
            .env("GATEHOUSE_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run gatehouse");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let started = Instant::now();
        let addr = loop {
            if let Ok(addr) = rx.try_recv() {
                break addr;
            }
            let exited = child.try_wait().expect("wait").is_some();
            if exited || started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                let log = log.lock().expect("log lock").clone();
                return Err(log);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in the listening line");
        Ok(Self {
            child: Some(child),
            url: format!("http://{addr}"),
            port,
            log,
            reader: Some(reader),
        })
    }

    /// The URL of `path` on this server.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `POST /token` with `user` and `pw` as an urlencoded form.
    pub async fn login(&self, client: &reqwest::Client, user: &str, pw: &str) -> reqwest::Response {
        client
            .post(self.at("/token"))
            .form(&[("username", user), ("password", pw)])
            .send()
            .await
            .expect("login request")
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("not waited for yet")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not waited for yet").id()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal gatehouse");
    }

    /// SIGKILL, as a crash or the OOM killer would; the log stays readable.
    pub fn kill(&mut self) {
        let _ = self.child().kill();
        let _ = self.child().wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child().try_wait(), Ok(None))
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Whether a line of the log matches within 5 s; the log is read as the server writes
    /// it, so a line may arrive just after the response it belongs to.
    pub async fn logged(&self, matches: impl Fn(&str) -> bool) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if self.log().lines().any(&matches) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Waits for the process to exit; its status and whole log.
    pub async fn wait(mut self) -> (std::process::ExitStatus, String) {
        let reader = self.reader.take();
        let mut child = self.child.take().expect("not waited for yet");
        let status = tokio::task::spawn_blocking(move || {
            let status = child.wait();
            if let Some(reader) = reader {
                let _ = reader.join();
            }
            status
        })
        .await
        .expect("join")
        .expect("wait for gatehouse");
        (status, self.log())
    }
}

/// The address of a `gatehouse listening` log line, in the text or the JSON format.
fn listening_addr(line: &str) -> Option<String> {
    if let Some((_, addr)) = line.split_once("gatehouse listening addr=") {
        return Some(addr.trim().to_owned());
    }
    let json: Value = serde_json::from_str(line).ok()?;
    let fields = &json["fields"];
    (fields["message"] == "gatehouse listening")
        .then(|| fields["addr"].as_str().map(str::to_owned))
        .flatten()
}

impl Drop for ServingBinary {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
