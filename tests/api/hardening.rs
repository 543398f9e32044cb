//! What a local user, a hostile client or a careless operator can do to the real binary:
//! read the database file, forge log lines, read a password off an error, slip the
//! tutorial's key or an off-site `ROOT_PATH` past the start-up checks, or make it read a
//! device without end. Each is refused, escaped or redacted.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::helpers::{
    gatehouse_command, output_within, sqlite_url, ServingBinary, TestDb, TEST_SECRET,
};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `gatehouse args...` with `env` only, which must exit 1 within 10 s; its stderr.
fn start_fails(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = output_within(
        gatehouse_command().args(args).envs(env.iter().copied()),
        "",
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    stderr(&out)
}

/// `gatehouse migrate` with the key in `key_file` must succeed.
fn starts_with_key_file(database_url: &str, key_file: &Path) {
    let out = output_within(
        gatehouse_command()
            .arg("migrate")
            .env("DATABASE_URL", database_url)
            .env("SECRET_KEY_FILE", key_file),
        "",
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_fresh_default_database_and_its_wal_and_shm_files_are_private_to_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    // Without SECRET_KEY, as in the tutorial: the generated key goes into this file.
    let mut server = gatehouse_command()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let files =
        ["gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm"].map(|f| dir.path().join(f));
    let started = Instant::now();
    while !files.iter().all(|f| f.exists()) && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let modes: Vec<_> = files.iter().map(|f| mode_of(f)).collect();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(modes, [0o600; 3], "modes of {files:?}");
}

#[test]
fn a_database_file_other_users_can_read_is_warned_about_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let migrate = |format: &str| {
        output_within(
            gatehouse_command()
                .args(["migrate", "--log-format", format])
                .env("DATABASE_URL", &url)
                .env("SECRET_KEY", TEST_SECRET),
            "",
            Duration::from_secs(30),
        )
    };
    let first = migrate("text");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(!stderr(&first).contains("WARN"), "{}", stderr(&first));

    let db = dir.path().join("gatehouse.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = migrate("text");
    assert!(again.status.success(), "{}", stderr(&again));
    let warning = format!(
        "WARN gatehouse::app: the SQLite file {} has mode 0644: other local users can read \
         it, and it holds the signing key unless SECRET_KEY or SECRET_KEY_FILE is set; run \
         `chmod 600` on it and its -wal and -shm files",
        db.display()
    );
    assert!(stderr(&again).contains(&warning), "{}", stderr(&again));
    assert_eq!(
        mode_of(&db),
        0o644,
        "the owner's choice is warned about, not changed"
    );
}

/// The log lines of `log` that mention `marker`.
fn lines_with<'a>(log: &'a str, marker: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(marker)).collect()
}

/// Logs in twice as `username` with one failed login allowed per address, so that the
/// second attempt is refused and logged with the username; returns the log.
async fn log_of_a_refused_login(username: &str, format: &str) -> String {
    let db = TestDb::new().await;
    let server = ServingBinary::start(
        &db.url,
        &["serve", "--log-format", format],
        &[("MAX_FAILED_LOGINS_PER_ADDRESS", "1")],
    )
    .await;
    let client = reqwest::Client::new();
    assert_eq!(server.login(&client, username, "wrong").await.status(), 401);
    assert_eq!(server.login(&client, username, "wrong").await.status(), 429);
    assert!(server.logged(|l| l.contains("too many failures")).await);
    server.log()
}

const FORGING_USERNAME: &str = "x\nFORGED INFO gatehouse::request: method=GET status=200\u{1b}[2J";

#[tokio::test]
async fn a_username_with_a_newline_and_esc_is_escaped_in_the_text_log() {
    let log = log_of_a_refused_login(FORGING_USERNAME, "text").await;
    let refused = lines_with(&log, "login refused");
    assert_eq!(refused.len(), 1, "{log}");
    assert!(
        refused[0].contains(
            r"user=x\nFORGED INFO gatehouse::request: method=GET status=200\u{1b}[2J address="
        ),
        "{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "a raw ESC reached the log: {log:?}"
    );
    assert_eq!(lines_with(&log, "FORGED").len(), 1, "{log}");
}

#[tokio::test]
async fn a_username_with_a_newline_and_esc_is_escaped_in_the_json_log() {
    let log = log_of_a_refused_login(FORGING_USERNAME, "json").await;
    let forged = lines_with(&log, "FORGED");
    assert_eq!(forged.len(), 1, "{log}");
    assert!(forged[0].contains(r"x\nFORGED"), "{log}");
    assert!(forged[0].contains(r"\u001b[2J"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "a raw ESC reached the log: {log:?}"
    );
    let line: Value = serde_json::from_str(forged[0]).unwrap();
    assert_eq!(line["fields"]["user"], FORGING_USERNAME);
}

/// One character of each kind a log line must not carry raw: line and paragraph
/// separators (Zl, Zp), a C1 control (Cc) and DEL, and format characters (Cf): zero-width,
/// byte-order mark, soft hyphen, bidirectional controls and an invisible tag beyond the
/// BMP.
const INVISIBLE_USERNAME: &str =
    "a\u{2028}b\u{2029}c\u{85}d\u{7f}e\u{200b}f\u{feff}g\u{ad}h\u{202e}i\u{2066}j\u{61c}k\u{e0001}l";

/// Whether `c` is of a category the log escapes: Cc, Cf, Zl or Zp.
fn escaped_by_the_log(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator
    ) && c != '\n'
}

#[tokio::test]
async fn separators_and_invisible_format_characters_are_escaped_in_the_text_log() {
    let log = log_of_a_refused_login(INVISIBLE_USERNAME, "text").await;
    let refused = lines_with(&log, "login refused");
    assert_eq!(refused.len(), 1, "{log}");
    assert!(
        refused[0].contains(
            r"user=a\u{2028}b\u{2029}c\u{85}d\u{7f}e\u{200b}f\u{feff}g\u{ad}h\u{202e}i\u{2066}j\u{61c}k\u{e0001}l address="
        ),
        "{log}"
    );
    let raw: Vec<char> = log.chars().filter(|c| escaped_by_the_log(*c)).collect();
    assert_eq!(raw, Vec::<char>::new(), "raw in the log: {log:?}");
}

#[tokio::test]
async fn separators_and_invisible_format_characters_are_escaped_in_the_json_log() {
    let log = log_of_a_refused_login(INVISIBLE_USERNAME, "json").await;
    let refused = lines_with(&log, "login refused");
    assert_eq!(refused.len(), 1, "{log}");
    assert!(
        refused[0].contains(
            r#""user":"a\u2028b\u2029c\u0085d\u007fe\u200bf\ufeffg\u00adh\u202ei\u2066j\u061ck\udb40\udc01l""#
        ),
        "{log}"
    );
    let raw: Vec<char> = log.chars().filter(|c| escaped_by_the_log(*c)).collect();
    assert_eq!(raw, Vec::<char>::new(), "raw in the log: {log:?}");
    let line: Value = serde_json::from_str(refused[0]).unwrap();
    assert_eq!(line["fields"]["user"], INVISIBLE_USERNAME);
}

#[tokio::test]
async fn database_url_passwords_never_reach_stderr() {
    const PASSWORD: &str = "Pw-7qZx2-hunter2";
    let cases = [
        // No driver for the scheme: the driver error quotes the whole URL.
        format!("postgress://u:{PASSWORD}@127.0.0.1/x"),
        // Unparseable: quoted too.
        format!("postgres://u:{PASSWORD}@127.0.0.1:notaport/x"),
        format!("postgres://u:{PASSWORD}/with-slash@127.0.0.1:notaport/x"),
        format!("u:{PASSWORD}@127.0.0.1/x"),
        // Nothing listens: the pool times out.
        format!("postgres://u:{PASSWORD}@127.0.0.1:1/x"),
        // The server refuses the login.
        format!("postgres://no_such_role:{PASSWORD}@127.0.0.1:5432/test"),
        // Connected, but the migration fails.
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:5432/test\
             ?options=-c%20search_path%3Dno_such_schema"
        ),
    ];
    for url in &cases {
        for args in [&["serve", "--bind", "127.0.0.1:0"][..], &["migrate"]] {
            let err = start_fails(args, &[("DATABASE_URL", url), ("SECRET_KEY", TEST_SECRET)]);
            assert!(err.contains("error: cannot "), "{url}: {err}");
            assert!(!err.contains("Pw-7qZx2"), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{url}: {err}");
        }
    }
    let err = start_fails(
        &["migrate"],
        &[("DATABASE_URL", &cases[0]), ("SECRET_KEY", TEST_SECRET)],
    );
    assert!(
        err.contains(
            "The connection string 'postgress://u:***@127.0.0.1/x' has no supporting driver"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn quoted_padded_and_upper_case_tutorial_keys_are_refused_at_start() {
    let db = TestDb::new().await;
    let tutorial = "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7";
    for key in [
        tutorial.to_ascii_uppercase(),
        format!("\"{tutorial}\""),
        format!("'{tutorial}'"),
        format!("{tutorial}\n"),
        format!(" {tutorial}"),
    ] {
        let err = start_fails(
            &["migrate"],
            &[("DATABASE_URL", &db.url), ("SECRET_KEY", &key)],
        );
        assert!(
            err.contains("published in the FastAPI tutorial"),
            "{key:?}: {err}"
        );
        assert!(!err.to_ascii_lowercase().contains("09d25e094faa"), "{err}");
    }
    let err = start_fails(
        &["migrate"],
        &[
            ("DATABASE_URL", &db.url),
            ("SECRET_KEY", &format!(" {TEST_SECRET}")),
        ],
    );
    assert!(
        err.contains("error: invalid signing key: SECRET_KEY starts or ends with whitespace"),
        "{err}"
    );
    let err = start_fails(
        &["migrate"],
        &[
            ("DATABASE_URL", &db.url),
            ("SECRET_KEY", &format!("\"{TEST_SECRET}\"")),
        ],
    );
    assert!(err.contains("SECRET_KEY is wrapped in quotes"), "{err}");
    assert!(!err.contains(TEST_SECRET), "{err}");

    // A key file's trailing newline stays ignored.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{TEST_SECRET}\n")).unwrap();
    starts_with_key_file(&db.url, &key_file);
}

#[test]
fn a_root_path_that_is_not_a_local_path_is_refused_at_start() {
    for root_path in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/a/../b",
    ] {
        let out = output_within(
            gatehouse_command().arg("serve").env("ROOT_PATH", root_path),
            "",
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(2), "{root_path}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "invalid value '{root_path}' for '--root-path <ROOT_PATH>': must be a path like /auth"
            )),
            "{}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn a_secret_key_file_that_is_a_device_a_pipe_or_too_big_is_refused_at_once() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("zero-link");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let big = dir.path().join("big");
    std::fs::write(&big, "k".repeat(4097)).unwrap();
    let at_limit = dir.path().join("at-limit");
    std::fs::write(&at_limit, "k".repeat(4096)).unwrap();

    for (file, error) in [
        (Path::new("/dev/zero"), "not a regular file"),
        (&link, "not a regular file"),
        (&fifo, "not a regular file"),
        (dir.path(), "not a regular file"),
        (&big, "larger than 4096 bytes; a key file holds one key"),
    ] {
        let started = Instant::now();
        let err = start_fails(
            &["migrate"],
            &[
                ("DATABASE_URL", &db.url),
                ("SECRET_KEY_FILE", file.to_str().unwrap()),
            ],
        );
        assert!(
            err.contains(&format!(
                "error: cannot read --secret-key-file {}: {error}",
                file.display()
            )),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    starts_with_key_file(&db.url, &at_limit);
}
