//! The hashing pool is shared fairly: one client saturating `/token` cannot deny logins
//! to everyone else.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use futures_util::future::join_all;

use crate::helpers::{spawn_app_with, TestApp};

/// A login through the trusted proxy on behalf of `client`; its status.
async fn login_from(app: &TestApp, client: &str, username: &str, password: &str) -> u16 {
    app.login_from(client, username, password)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn while_one_address_saturates_token_logins_from_other_addresses_succeed() {
    // The pool of a 2-core machine with the default queue: 2 threads + 32 waiting.
    let app = spawn_app_with(|s| {
        s.hash_workers = Some(2);
        s.hash_queue_per_worker = 16;
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let app = &app;
    let stop = AtomicBool::new(false);
    // One address logs in to its own account over 64 connections, without pause.
    let hog = join_all((0..64).map(|_| async {
        let mut statuses = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            statuses.push(login_from(app, "198.51.100.1", "johndoe", "secret").await);
        }
        statuses
    }));
    // Meanwhile 20 other addresses log in, 4 at a time.
    let others = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut statuses = Vec::new();
        for batch in 0..5 {
            let logins = (0..4).map(|n| {
                let client = format!("203.0.113.{}", batch * 4 + n + 1);
                async move { login_from(app, &client, "alice", "secret2").await }
            });
            statuses.extend(join_all(logins).await);
        }
        stop.store(true, Ordering::Relaxed);
        statuses
    };
    let (hog, others) = tokio::join!(hog, others);

    let mut hog_counts = BTreeMap::new();
    for status in hog.into_iter().flatten() {
        *hog_counts.entry(status).or_insert(0) += 1;
    }
    // The pool was saturated: the hog itself was refused now and then.
    assert!(
        hog_counts.get(&503).copied().unwrap_or(0) > 0,
        "{hog_counts:?}"
    );
    let succeeded = others.iter().filter(|s| **s == 200).count();
    assert!(
        succeeded * 100 >= others.len() * 80,
        "only {succeeded} of {} other logins succeeded: {others:?} (hog: {hog_counts:?})",
        others.len()
    );
}
