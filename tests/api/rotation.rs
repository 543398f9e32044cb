//! `gatehouse keys rotate|list` against serving replicas of the real binary, with the
//! JWKS max-age made short: a new key is published at once and signs only after the
//! max-age; the old one keeps verifying; replicas learn of it without a restart. Under
//! EdDSA and under RS256 alike.

use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::Value;

use crate::helpers::{gatehouse_command, output_within, segment, ServingBinary, TestDb};

/// `gatehouse keys args...` on `db` with `alg` and a JWKS max-age of 2 s; its stdout.
fn keys_command(db: &TestDb, alg: &str, args: &[&str]) -> String {
    let out = output_within(
        gatehouse_command()
            .arg("keys")
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("JWT_ALGORITHM", alg)
            .env("JWKS_MAX_AGE_SECS", "2")
            .env("ACCESS_TOKEN_EXPIRE_MINUTES", "1"),
        "",
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The state `keys list` under `alg` shows for `kid` (a key of that algorithm).
fn listed_state(db: &TestDb, alg: &str, kid: &str) -> String {
    let list = keys_command(db, alg, &["list"]);
    let line = list
        .lines()
        .find(|l| l.starts_with(kid))
        .unwrap_or_else(|| panic!("{kid} not in {list}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[2], alg, "{line}");
    columns[1].to_owned()
}

async fn replica(db: &TestDb, alg: &str, jwks_max_age: &str) -> ServingBinary {
    ServingBinary::start(
        &db.url,
        &["serve", "--demo"],
        &[
            ("JWT_ALGORITHM", alg),
            ("JWKS_MAX_AGE_SECS", jwks_max_age),
            ("ACCESS_TOKEN_EXPIRE_MINUTES", "1"),
        ],
    )
    .await
}

async fn token(client: &reqwest::Client, server: &ServingBinary) -> String {
    let resp = server.login(client, "johndoe", "secret").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn me_status(client: &reqwest::Client, server: &ServingBinary, token: &str) -> u16 {
    client
        .get(server.at("/users/me/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn published_kids(client: &reqwest::Client, server: &ServingBinary) -> Vec<String> {
    let resp = client
        .get(server.at("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid(token: &str) -> String {
    segment(token, 0)["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_rotated_key_is_published_at_once_signs_after_the_max_age_and_old_tokens_keep_working() {
    rotation_under("EdDSA", Algorithm::EdDSA).await;
}

#[tokio::test]
async fn under_rs256_a_rotation_makes_an_rsa_key_and_old_tokens_keep_working_until_retired() {
    rotation_under("RS256", Algorithm::RS256).await;
}

async fn rotation_under(alg: &str, algorithm: Algorithm) {
    let db = TestDb::new().await;
    let client = reqwest::Client::new();
    // `fast` reloads every second; `slow` (max-age 300 s) only every minute, so it must
    // learn of the new key from a token that names it.
    let fast = replica(&db, alg, "2").await;
    let slow = replica(&db, alg, "300").await;
    let old_token = token(&client, &fast).await;
    let old_kid = kid(&old_token);
    assert_eq!(segment(&old_token, 0)["alg"], alg);
    assert_eq!(
        published_kids(&client, &fast).await,
        std::slice::from_ref(&old_kid)
    );
    assert_eq!(listed_state(&db, alg, &old_kid), "active");

    let rotated_at = Instant::now();
    let out = keys_command(&db, alg, &["rotate"]);
    let new_kid = out
        .strip_prefix("new key ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(listed_state(&db, alg, &new_kid), "next");
    // Published at once: a replica rereads the keys for the JWKS at most once a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        published_kids(&client, &fast).await,
        [old_kid.clone(), new_kid.clone()]
    );
    assert_eq!(kid(&token(&client, &fast).await), old_kid);

    // Signing with the new key from max-age (2 s) + 1 s on, on the replica that reloads.
    let new_token = loop {
        let token = token(&client, &fast).await;
        if kid(&token) == new_kid {
            break token;
        }
        assert!(
            rotated_at.elapsed() < Duration::from_secs(8),
            "the new key never started signing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(rotated_at.elapsed() >= Duration::from_secs(3));
    assert_eq!(segment(&new_token, 0)["alg"], alg, "rotated within {alg}");
    assert_eq!(listed_state(&db, alg, &old_kid), "retired");
    assert_eq!(listed_state(&db, alg, &new_kid), "active");
    // The slow replica has not reloaded on its timer yet: the unknown kid makes it reload.
    assert_eq!(me_status(&client, &slow, &new_token).await, 200);
    // A resource server with only the JWKS URL verifies both, old and new.
    for token in [&old_token, &new_token] {
        let claims =
            crate::jwks_snippet::verify(&fast.at("/.well-known/jwks.json"), token, algorithm)
                .await
                .unwrap();
        assert_eq!(claims.sub, "johndoe");
    }
    // Old tokens keep working on both, and the retired key stays published.
    for server in [&fast, &slow] {
        assert_eq!(me_status(&client, server, &old_token).await, 200);
        assert_eq!(
            published_kids(&client, server).await,
            [old_kid.clone(), new_kid.clone()]
        );
    }

    // The retired key goes when its last token has expired: 60 s lifetime + 5 s leeway
    // after the new key took over (3 s after the rotation).
    let gone = loop {
        if published_kids(&client, &fast).await == std::slice::from_ref(&new_kid) {
            break rotated_at.elapsed();
        }
        assert!(rotated_at.elapsed() < Duration::from_secs(90));
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(gone >= Duration::from_secs(3 + 65 - 1), "{gone:?}");
    assert_eq!(listed_state(&db, alg, &old_kid), "expired");
    assert_eq!(me_status(&client, &fast, &new_token).await, 200);
}

#[test]
fn rotation_is_refused_under_hs256_and_with_a_key_file() {
    let out = output_within(
        gatehouse_command()
            .args(["keys", "rotate"])
            .env("DATABASE_URL", "sqlite::memory:"),
        "",
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: key rotation needs JWT_ALGORITHM=EdDSA or RS256; an HS256 secret is changed \
         through SECRET_KEY, which ends every token\n"
    );
    let out = output_within(
        gatehouse_command()
            .args(["keys", "rotate"])
            .env("DATABASE_URL", "sqlite::memory:")
            .env("JWT_ALGORITHM", "EdDSA")
            .env("JWT_PRIVATE_KEY_FILE", "/nonexistent.pem"),
        "",
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("error: the signing key comes from JWT_PRIVATE_KEY_FILE"));
}
