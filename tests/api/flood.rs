//! A login flood against the real binary: memory stays bounded by the hashing pool,
//! excess logins are shed with 503 at once, and token checks keep being answered.

use std::collections::BTreeMap;

use futures_util::future::join_all;

use crate::helpers::{ServingBinary, TestDb};

const WORKERS: u64 = 2;
const MIB: u64 = 1024 * 1024;

/// Peak resident memory of `pid` so far, from `/proc/<pid>/status` (`VmHWM`).
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test]
async fn login_flood_of_256_stays_within_the_pool_memory_bound_and_sheds_the_rest() {
    let db = TestDb::new().await;
    let server = ServingBinary::start(
        &db.url,
        &["serve", "--demo"],
        &[("HASH_WORKERS", "2"), ("HASH_QUEUE_PER_WORKER", "8")],
    )
    .await;
    let client = reqwest::Client::new();
    let login = || {
        client
            .post(format!("{}/token", server.url))
            .form(&[("username", "johndoe"), ("password", "secret")])
            .send()
    };
    let token: serde_json::Value = login().await.unwrap().json().await.unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());

    let flood = join_all((0..256).map(|_| async {
        let resp = login().await.unwrap();
        let retry_after = resp.headers().contains_key("retry-after");
        (resp.status().as_u16(), retry_after)
    }));
    let me_during_flood = async {
        // Token checks are not queued behind the hashing pool.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        client
            .get(format!("{}/users/me/", server.url))
            .header("Authorization", &bearer)
            .send()
            .await
            .unwrap()
            .status()
    };
    let (answers, me_status) = tokio::join!(flood, me_during_flood);
    assert_eq!(me_status, 200);

    let mut by_status = BTreeMap::new();
    for (status, retry_after) in &answers {
        *by_status.entry(*status).or_insert(0) += 1;
        if *status == 503 {
            assert!(retry_after, "503 without Retry-After");
        }
    }
    assert_eq!(
        by_status.keys().copied().collect::<Vec<_>>(),
        [200, 503],
        "{by_status:?}"
    );
    // At most the running verifies plus the queue can have been admitted at any moment;
    // everything else was shed. (More may pass as the pool drains while requests arrive.)
    assert!(by_status[&503] > 0, "{by_status:?}");

    let peak = peak_rss_bytes(server.pid());
    let bound = WORKERS * 64 * MIB + 64 * MIB;
    println!(
        "peak RSS under the flood: {} MiB (bound {} MiB)",
        peak / MIB,
        bound / MIB
    );
    assert!(peak <= bound, "peak RSS {} MiB", peak / MIB);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, _) = server.wait().await;
    assert_eq!(status.code(), Some(0));
}
