//! The `gatehouse` binary: user management, migrate, openapi, start-up errors.

use std::process::Output;

use crate::helpers::{gatehouse_cli, gatehouse_command, start, ServingBinary, TestDb, TEST_SECRET};

/// Runs `gatehouse args...` on `db`, with `stdin` piped in.
pub fn gatehouse(db: &TestDb, args: &[&str], stdin: &str) -> Output {
    gatehouse_cli(&db.url, args, stdin)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn users_added_changed_and_disabled_from_the_cli_log_in_accordingly() {
    let dir = TestDb::new().await;
    let add = gatehouse(
        &dir,
        &[
            "user",
            "add",
            "carol",
            "--email",
            "carol@example.com",
            "--full-name",
            "Carol C",
        ],
        "hunter22-is-mine\n",
    );
    assert!(add.status.success(), "{}", stderr(&add));
    assert_eq!(stdout(&add), "created user carol\n");

    let dup = gatehouse(&dir, &["user", "add", "carol"], "other pass-phrase\n");
    assert!(!dup.status.success());
    assert_eq!(stderr(&dup), "error: user \"carol\" already exists\n");

    let app = start(dir.settings()).await;
    let token = app.token("carol", "hunter22-is-mine").await;
    let me: serde_json::Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(
        me,
        serde_json::json!({"username": "carol", "email": "carol@example.com", "full_name": "Carol C", "disabled": false})
    );

    let passwd = gatehouse(&dir, &["user", "passwd", "carol"], "correct horse\n");
    assert!(passwd.status.success(), "{}", stderr(&passwd));
    assert_eq!(
        app.me(&token).await.status(),
        401,
        "password change revokes the old token"
    );
    assert_eq!(app.login("carol", "hunter22-is-mine").await.status(), 401);
    let token = app.token("carol", "correct horse").await;

    let revoke = gatehouse(&dir, &["user", "revoke", "carol"], "");
    assert!(revoke.status.success());
    assert_eq!(app.me(&token).await.status(), 401, "revoke");
    let token = app.token("carol", "correct horse").await;

    let disable = gatehouse(&dir, &["user", "disable", "carol"], "");
    assert!(disable.status.success());
    assert_eq!(app.me(&token).await.status(), 401, "disabling revokes");
    let token = app.token("carol", "correct horse").await;
    assert_eq!(app.me(&token).await.status(), 400);

    let list = gatehouse(&dir, &["user", "list"], "");
    let listing = stdout(&list);
    assert!(
        listing.lines().any(|l| l.starts_with("carol")
            && l.contains("disabled")
            && l.contains("carol@example.com")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("johndoe") && l.contains("active")),
        "{listing}"
    );

    let enable = gatehouse(&dir, &["user", "enable", "carol"], "");
    assert!(enable.status.success());
    assert_eq!(app.me(&token).await.status(), 200);
}

#[tokio::test]
async fn user_commands_report_unknown_users_and_bad_input() {
    let dir = TestDb::new().await;
    for args in [
        &["user", "passwd", "ghost"][..],
        &["user", "disable", "ghost"],
        &["user", "enable", "ghost"],
        &["user", "revoke", "ghost"],
    ] {
        let out = gatehouse(&dir, args, "pass-phrase\n");
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(stderr(&out), "error: no user named \"ghost\"\n", "{args:?}");
    }
    let empty = gatehouse(&dir, &["user", "add", "dave"], "\n");
    assert_eq!(
        stderr(&empty),
        "error: the password must be at least 8 characters\n"
    );
    let long_name = "x".repeat(129);
    let long = gatehouse(&dir, &["user", "add", &long_name], "pass-phrase\n");
    assert_eq!(
        stderr(&long),
        "error: username must be 1 to 128 characters\n"
    );
    let control = gatehouse(&dir, &["user", "add", "da\tve"], "pass-phrase\n");
    assert_eq!(
        stderr(&control),
        "error: username must not contain control characters\n"
    );
    let huge = gatehouse(
        &dir,
        &["user", "add", "dave"],
        &format!("{}\n", "p".repeat(1025)),
    );
    assert_eq!(
        stderr(&huge),
        "error: the password must be at most 1024 bytes\n"
    );
}

#[test]
fn password_is_never_taken_from_argv() {
    // clap refuses the flag before any database is opened: no backend to choose.
    let dir = TestDb::sqlite();
    let out = gatehouse(&dir, &["user", "add", "eve", "--password", "pw"], "");
    assert_eq!(out.status.code(), Some(2), "clap rejects the unknown flag");
    assert!(stderr(&out).contains("unexpected argument '--password'"));
}

#[tokio::test]
async fn bad_secret_keys_are_refused_at_start_with_a_clear_message() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |key: &str| {
        gatehouse_command()
            .args(["migrate"])
            .env("DATABASE_URL", &db.url)
            .env("SECRET_KEY", key)
            .output()
            .unwrap()
    };
    let short = run("too-short");
    assert_eq!(short.status.code(), Some(1));
    assert!(
        stderr(&short).contains("SECRET_KEY must be at least 32 bytes, got 9"),
        "{}",
        stderr(&short)
    );
    let empty = run("");
    assert_eq!(
        empty.status.code(),
        Some(1),
        "an empty key is refused, not ignored"
    );
    assert!(stderr(&empty).contains("at least 32 bytes, got 0"));
    let tutorial = run("09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7");
    assert_eq!(tutorial.status.code(), Some(1));
    assert!(stderr(&tutorial).contains("published in the FastAPI tutorial"));
    assert!(
        !stderr(&tutorial).contains("09d25e094faa"),
        "the key is never printed"
    );

    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "short\n").unwrap();
    let from_file = gatehouse_command()
        .args(["migrate", "--secret-key-file"])
        .arg(&key_file)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(from_file.status.code(), Some(1));
    assert!(stderr(&from_file).contains("at least 32 bytes, got 5"));
    let missing = gatehouse_command()
        .args(["migrate", "--secret-key-file", "/nonexistent/key"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(stderr(&missing).contains("cannot read --secret-key-file /nonexistent/key"));
}

#[test]
fn unreachable_database_and_bad_flags_fail_with_clear_errors() {
    let pg = gatehouse_command()
        .args([
            "migrate",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
        ])
        .output()
        .unwrap();
    assert_eq!(pg.status.code(), Some(1));
    assert!(
        stderr(&pg).contains("error: cannot open the database"),
        "{}",
        stderr(&pg)
    );

    let missing_dir = gatehouse_command()
        .args([
            "migrate",
            "--database-url",
            "sqlite:///nonexistent-dir/x.db?mode=rwc",
        ])
        .output()
        .unwrap();
    assert_eq!(missing_dir.status.code(), Some(1));
    assert!(stderr(&missing_dir).contains("error: cannot open the database"));

    let bad_bind = gatehouse_command()
        .args(["serve", "--bind", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(bad_bind.status.code(), Some(2));
    assert!(stderr(&bad_bind).contains("invalid value 'nonsense' for '--bind"));

    let bad_minutes = gatehouse_command()
        .args(["serve", "--access-token-expire-minutes", "0"])
        .output()
        .unwrap();
    assert_eq!(bad_minutes.status.code(), Some(2));
}

#[test]
fn openapi_command_prints_the_committed_document() {
    let out = gatehouse_command().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    assert!(
        stdout(&out) == format!("{committed}\n"),
        "`gatehouse openapi` differs from openapi/openapi.json"
    );
}

/// A bare `gatehouse` serves (on `GATEHOUSE_BIND`), seeds no demo users without `--demo`,
/// logs one line per request without credentials, and exits 0 on SIGTERM and SIGINT.
#[tokio::test]
async fn bare_command_serves_logs_requests_and_stops_cleanly_on_signals() {
    use nix::sys::signal::Signal;

    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let db = TestDb::new().await;
        let server = ServingBinary::start(&db.url, &[], &[]).await;
        let client = reqwest::Client::new();
        let url = server.url.clone();
        let login = client
            .post(format!("{url}/token"))
            .form(&[("username", "johndoe"), ("password", "pa55-w0rd-in-a-form")])
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 401, "no demo users without --demo");
        let me = client
            .get(format!("{url}/users/me/"))
            .header("Authorization", "Bearer some.bearer.credential")
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 401);

        server.signal(signal);
        let (status, log) = server.wait().await;
        assert_eq!(status.code(), Some(0), "exit after {signal:?}");
        assert!(log.contains("method=POST path=/token status=401"), "{log}");
        assert!(
            log.contains("method=GET path=/users/me/ status=401"),
            "{log}"
        );
        assert!(
            !log.contains("pa55-w0rd-in-a-form") && !log.contains("some.bearer.credential"),
            "credentials logged: {log}"
        );
        assert!(!log.contains(TEST_SECRET));
    }
}

/// The request log is written off the request path, in batches: every request answered
/// still has its line, also when the server is stopped the moment the last answer left.
#[tokio::test]
async fn every_request_answered_is_logged_when_stopped_under_load() {
    const TASKS: usize = 8;
    const EACH: usize = 300;
    let db = TestDb::sqlite();
    let server = ServingBinary::start(&db.url, &["serve", "--demo"], &[]).await;
    let client = reqwest::Client::new();
    let token: serde_json::Value = server
        .login(&client, "johndoe", "secret")
        .await
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, url, token) = (client.clone(), server.at("/users/me/"), token.clone());
            tokio::spawn(async move {
                for _ in 0..EACH {
                    let resp = client.get(&url).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, log) = server.wait().await;
    assert_eq!(status.code(), Some(0));
    let lines = log
        .lines()
        .filter(|l| l.contains("method=GET path=/users/me/ status=200"))
        .count();
    assert_eq!(lines, TASKS * EACH, "one line per request answered");
    assert!(
        log.trim_end().ends_with("gatehouse stopped"),
        "nothing after the last line: {log}"
    );
}

#[test]
fn flags_win_over_the_environment() {
    let out = gatehouse_command()
        .args(["openapi", "--root-path", "/from-flag"])
        .env("ROOT_PATH", "/from-env")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["servers"], serde_json::json!([{"url": "/from-flag"}]));
    let out = gatehouse_command()
        .arg("openapi")
        .env("ROOT_PATH", "/from-env")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["servers"], serde_json::json!([{"url": "/from-env"}]));
}

#[test]
fn help_never_prints_environment_values() {
    let out = gatehouse_command()
        .arg("--help")
        .env("DATABASE_URL", "postgres://admin:hunter2@db/prod")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!stdout(&out).contains("hunter2"), "{}", stdout(&out));
}

/// SIGTERM during traffic: the request in flight is answered, new connections are
/// refused, and the process exits 0 well within the 10 s grace period.
#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_refuses_new_connections() {
    use nix::sys::signal::Signal;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let db = TestDb::new().await;
    let server = ServingBinary::start(&db.url, &["serve", "--demo"], &[]).await;
    let body = "username=johndoe&password=secret";
    let mut in_flight = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: gatehouse\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // Half the body now: the request has begun and cannot finish before the signal.
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let signalled = std::time::Instant::now();
    server.signal(Signal::SIGTERM);
    let mut refused = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "still accepting connections after SIGTERM");

    in_flight.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains(r#""token_type":"bearer""#), "{answer}");

    let (status, log) = server.wait().await;
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(signalled.elapsed() < std::time::Duration::from_secs(5));
    assert!(log.contains("method=POST path=/token status=200"), "{log}");
}

#[tokio::test]
async fn cli_shows_and_sets_scopes_and_the_next_request_sees_them() {
    let dir = TestDb::new().await;
    let add = gatehouse(
        &dir,
        &["user", "add", "dora", "--scopes", "me admin"],
        "a secret pass-phrase\n",
    );
    assert!(add.status.success(), "{}", stderr(&add));
    let plain = gatehouse(&dir, &["user", "add", "erin"], "a secret pass-phrase\n");
    assert!(plain.status.success(), "{}", stderr(&plain));

    let show = gatehouse(&dir, &["user", "scopes", "dora"], "");
    assert_eq!(stdout(&show), "me admin\n");
    let show = gatehouse(&dir, &["user", "scopes", "erin"], "");
    assert_eq!(stdout(&show), "me items\n", "the default");

    let mut settings = dir.settings();
    settings.database_url = dir.url.clone();
    let app = start(settings).await;
    let token = app.token("erin", "a secret pass-phrase").await;
    let bearer = format!("Bearer {token}");
    let items = || app.get("/users/me/items/", Some(&bearer));
    assert_eq!(items().await.status(), 200);

    let set = gatehouse(&dir, &["user", "scopes", "erin", "--set", "me"], "");
    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(stdout(&set), "erin: holds scopes: me\n");
    assert_eq!(items().await.status(), 401, "taken away at once");

    let list = gatehouse(&dir, &["user", "list"], "");
    let listing = stdout(&list);
    assert!(
        listing.lines().next().unwrap().contains("scopes"),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("dora") && l.contains("me admin")),
        "{listing}"
    );

    let none = gatehouse(&dir, &["user", "scopes", "erin", "--set", ""], "");
    assert!(none.status.success(), "{}", stderr(&none));
    assert_eq!(
        stdout(&gatehouse(&dir, &["user", "scopes", "erin"], "")),
        "\n"
    );

    for (args, message) in [
        (
            &["user", "scopes", "erin", "--set", "me root"][..],
            "unknown scope \"root\"",
        ),
        (
            &["user", "scopes", "nobody"][..],
            "no user named \"nobody\"",
        ),
        (
            &["user", "add", "fay", "--scopes", "sudo"][..],
            "unknown scope \"sudo\"",
        ),
    ] {
        let out = gatehouse(&dir, args, "a secret pass-phrase\n");
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
}
