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
