//! Brute-force limits on `/token`: failures counted per account and per client address.

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

/// Status, body and `Retry-After` of a login.
async fn attempt(app: &TestApp, username: &str, password: &str) -> (u16, Value, Option<u64>) {
    let resp = app.login(username, password).await;
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (
        resp.status().as_u16(),
        resp.json().await.unwrap(),
        retry_after,
    )
}

/// An app allowing `per_account` failures an hour and `per_address` a minute.
async fn app_with_limits(per_account: u32, per_address: u32) -> TestApp {
    spawn_app_with(|s| {
        s.max_failed_logins_per_account = per_account;
        s.max_failed_logins_per_address = per_address;
    })
    .await
}

fn too_many() -> Value {
    json!({"detail": "Too many failed attempts, retry later"})
}

#[tokio::test]
async fn account_past_its_failure_limit_gets_429_even_with_the_right_password() {
    let app = app_with_limits(3, 1000).await;
    for _ in 0..3 {
        assert_eq!(attempt(&app, "johndoe", "wrong").await.0, 401);
    }
    let (status, body, retry_after) = attempt(&app, "johndoe", "secret").await;
    assert_eq!((status, body), (429, too_many()));
    let retry_after = retry_after.expect("Retry-After");
    assert!((3590..=3600).contains(&retry_after), "{retry_after}");
    // Other accounts are not affected.
    assert_eq!(attempt(&app, "alice", "secret2").await.0, 200);
}

#[tokio::test]
async fn unknown_and_existing_usernames_are_limited_alike() {
    let app = app_with_limits(2, 1000).await;
    let mut answers = Vec::new();
    for username in ["johndoe", "nobody"] {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (status, body, retry_after) = attempt(&app, username, "wrong").await;
            seen.push((status, body, retry_after.is_some()));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][2], (429, too_many(), true));
}

#[tokio::test]
async fn successful_login_resets_the_account_counter() {
    let app = app_with_limits(3, 1000).await;
    for _ in 0..2 {
        assert_eq!(attempt(&app, "johndoe", "wrong").await.0, 401);
    }
    assert_eq!(attempt(&app, "johndoe", "secret").await.0, 200);
    for _ in 0..2 {
        assert_eq!(attempt(&app, "johndoe", "wrong").await.0, 401);
    }
    assert_eq!(attempt(&app, "johndoe", "secret").await.0, 200);
    for _ in 0..3 {
        assert_eq!(attempt(&app, "johndoe", "wrong").await.0, 401);
    }
    assert_eq!(attempt(&app, "johndoe", "secret").await.0, 429);
}

#[tokio::test]
async fn one_address_spraying_many_accounts_hits_the_burst_limit() {
    let app = app_with_limits(1000, 3).await;
    for username in ["a", "b", "c"] {
        assert_eq!(attempt(&app, username, "wrong").await.0, 401);
    }
    let (status, body, retry_after) = attempt(&app, "johndoe", "secret").await;
    assert_eq!((status, body), (429, too_many()));
    let retry_after = retry_after.expect("Retry-After");
    assert!((50..=60).contains(&retry_after), "{retry_after}");
}

#[tokio::test]
async fn refused_logins_are_not_counted_as_failures() {
    let app = app_with_limits(2, 1000).await;
    for _ in 0..2 {
        assert_eq!(attempt(&app, "johndoe", "wrong").await.0, 401);
    }
    for _ in 0..5 {
        assert_eq!(attempt(&app, "johndoe", "wrong").await.0, 429);
    }
    let failures: i64 = gatehouse::db::login_failure::windows(&app.db, "johndoe", "127.0.0.1")
        .await
        .unwrap()
        .0
        .unwrap()
        .failures;
    assert_eq!(failures, 2);
}

/// A wrong login claiming to come from `forwarded_for`; its status.
async fn wrong_login_via(app: &TestApp, forwarded_for: &str) -> u16 {
    app.login_from(forwarded_for, "johndoe", "wrong")
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_address_limit() {
    let app = spawn_app_with(|s| {
        s.max_failed_logins_per_account = 1000;
        s.max_failed_logins_per_address = 2;
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for _ in 0..2 {
        assert_eq!(wrong_login_via(&app, "198.51.100.1").await, 401);
    }
    assert_eq!(wrong_login_via(&app, "198.51.100.1").await, 429);
    // Another client behind the same proxy is not affected.
    assert_eq!(wrong_login_via(&app, "198.51.100.2").await, 401);
    // A client-written hop left of the proxy's own entry changes nothing.
    assert_eq!(
        wrong_login_via(&app, "203.0.113.5, 198.51.100.1").await,
        429
    );
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = app_with_limits(1000, 2).await;
    assert_eq!(wrong_login_via(&app, "198.51.100.1").await, 401);
    assert_eq!(wrong_login_via(&app, "198.51.100.2").await, 401);
    assert_eq!(wrong_login_via(&app, "198.51.100.3").await, 429);
}
