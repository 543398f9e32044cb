//! The commit ceiling for the refresh grant: how many single-row commits per second SQLite
//! makes on this machine with gatehouse's durability (WAL, `synchronous=FULL`: every commit
//! waits for its `fsync`).
//!
//! `sqlite_commits <dir> [seconds]` creates a database in `dir` (give it the directory of
//! the database being benchmarked, so both sit on one file system), inserts one row per
//! transaction from one connection for `seconds` (default 5), and prints one JSON object:
//! `commits`, `seconds`, `commits_per_s`.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use rusqlite::Connection;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: sqlite_commits <dir> [seconds]");
        return ExitCode::FAILURE;
    };
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    match run(&dir, seconds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sqlite_commits: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &std::path::Path, seconds: f64) -> rusqlite::Result<()> {
    let path = dir.join("commits.db");
    let conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")?;
    let mut insert = conn.prepare("INSERT INTO t (v) VALUES (?1)")?;
    let start = Instant::now();
    let mut commits = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        // Autocommit: each insert is its own transaction and commit.
        insert.execute(["a refresh token's worth of text, 64 bytes long, more or less..."])?;
        commits += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(insert);
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    println!(
        "{}",
        serde_json::json!({
            "commits": commits,
            "seconds": elapsed,
            "commits_per_s": commits as f64 / elapsed,
        })
    );
    Ok(())
}
