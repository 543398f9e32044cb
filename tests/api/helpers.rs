//! Starting the real app for a test, and the requests tests make of it.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse::{
    app::App,
    config::{ServeArgs, Settings},
    db::{self, Db},
};
use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::SecretString;
use serde_json::Value;
use tempfile::TempDir;

/// The signing key of every test app unless a test sets another.
pub const TEST_SECRET: &str = "test-secret-key-that-is-long-enough-0123456789";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Db,
    pub settings: Settings,
    /// Keeps the SQLite file alive for the test's duration.
    _dir: TempDir,
}

/// A fresh database with the demo users, default settings and [`TEST_SECRET`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::for_database(sqlite_url(&dir));
    settings.secret_key = Some(SecretString::from(TEST_SECRET));
    configure(&mut settings);
    start(settings, dir).await
}

pub fn sqlite_url(dir: &TempDir) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("gatehouse.db").display()
    )
}

/// Starts the app on `settings` (demo users seeded) on a free port.
pub async fn start(settings: Settings, dir: TempDir) -> TestApp {
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
        _dir: dir,
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
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.args(args)
            .env("DATABASE_URL", database_url)
            .env("GATEHOUSE_BIND", format!("127.0.0.1:{port}"))
            .env("SECRET_KEY", TEST_SECRET)
            .env("RUST_LOG", "info")
            .env_remove("LOG_FORMAT")
            .env_remove("SECRET_KEY_FILE")
            .env_remove("ROOT_PATH")
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
