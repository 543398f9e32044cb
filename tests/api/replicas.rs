//! Two `gatehouse serve` processes of the real binary on one PostgreSQL database, as two
//! replicas behind a load balancer.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{gatehouse_command, output_within, ServingBinary, TestDb};

/// `gatehouse user ...` on `db` without `SECRET_KEY`, as an operator runs it next to the
/// replicas; the password, when the command reads one, comes from stdin.
fn user_command(db: &TestDb, args: &[&str], stdin: &str) {
    let out = output_within(
        gatehouse_command()
            .arg("user")
            .args(args)
            .env("DATABASE_URL", &db.url),
        stdin,
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "user {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn token(client: &reqwest::Client, server: &ServingBinary, user: &str, pw: &str) -> String {
    let resp = server.login(client, user, pw).await;
    assert_eq!(resp.status(), 200, "login of {user} on {}", server.url);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn me(client: &reqwest::Client, server: &ServingBinary, token: &str) -> (u16, Value) {
    let resp = client
        .get(server.at("/users/me/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Asserts `token` gets `status` from both replicas.
async fn on_both(
    client: &reqwest::Client,
    replicas: &[&ServingBinary; 2],
    token: &str,
    status: u16,
    why: &str,
) {
    for server in replicas {
        let (got, body) = me(client, server, token).await;
        assert_eq!(got, status, "{why} on {}: {body}", server.url);
    }
}

#[tokio::test]
async fn two_replicas_on_one_postgres_share_the_generated_key_and_revocation() {
    let db = TestDb::postgres().await;

    // Both start at once on an empty database with no SECRET_KEY: they migrate one after
    // the other, and whichever generates the signing key first, the other loads that one.
    let (a, b) = two_replicas(&db, &[]).await;
    let both = [&a, &b];
    let client = reqwest::Client::new();
    user_command(
        &db,
        &["add", "carol", "--email", "carol@example.com"],
        "first-pass-phrase\n",
    );

    let from_a = token(&client, &a, "carol", "first-pass-phrase").await;
    let from_b = token(&client, &b, "carol", "first-pass-phrase").await;
    for t in [&from_a, &from_b] {
        for server in both {
            assert_eq!(
                me(&client, server, t).await,
                (
                    200,
                    json!({"username": "carol", "email": "carol@example.com", "full_name": null, "disabled": false})
                ),
                "a token of one replica is valid on the other"
            );
        }
    }

    user_command(&db, &["revoke", "carol"], "");
    on_both(&client, &both, &from_a, 401, "after `user revoke`").await;
    on_both(&client, &both, &from_b, 401, "after `user revoke`").await;

    let before_passwd = token(&client, &b, "carol", "first-pass-phrase").await;
    on_both(&client, &both, &before_passwd, 200, "a fresh token").await;
    user_command(&db, &["passwd", "carol"], "second-pass-phrase\n");
    on_both(&client, &both, &before_passwd, 401, "after `user passwd`").await;
    for server in both {
        assert_eq!(
            server
                .login(&client, "carol", "first-pass-phrase")
                .await
                .status(),
            401
        );
    }

    let before_disable = token(&client, &a, "carol", "second-pass-phrase").await;
    on_both(&client, &both, &before_disable, 200, "a fresh token").await;
    user_command(&db, &["disable", "carol"], "");
    on_both(&client, &both, &before_disable, 401, "after `user disable`").await;
    let while_disabled = token(&client, &b, "carol", "second-pass-phrase").await;
    on_both(&client, &both, &while_disabled, 400, "a disabled user").await;

    // Nothing above needed a restart: each request reads the user's token version from the
    // shared database.
    assert!(!a.log().contains("error"), "{}", a.log());
    assert!(!b.log().contains("error"), "{}", b.log());
}

/// Two replicas of the binary on `db` without `SECRET_KEY`, started together, with `env`.
async fn two_replicas(db: &TestDb, env: &[(&str, &str)]) -> (ServingBinary, ServingBinary) {
    let mut all = vec![("DATABASE_URL", db.url.as_str())];
    all.extend_from_slice(env);
    let (a, b) = tokio::join!(
        ServingBinary::start_with_env(&["serve"], &all),
        ServingBinary::start_with_env(&["serve"], &all)
    );
    (a.unwrap(), b.unwrap())
}

#[tokio::test]
async fn two_replicas_on_one_postgres_share_the_failed_login_counters() {
    let db = TestDb::postgres().await;
    let (a, b) = two_replicas(
        &db,
        &[
            ("MAX_FAILED_LOGINS_PER_ACCOUNT", "4"),
            ("MAX_FAILED_LOGINS_PER_ADDRESS", "6"),
        ],
    )
    .await;
    user_command(&db, &["add", "carol"], "carol-pass-phrase\n");
    user_command(&db, &["add", "dave"], "dave-pass-phrase\n");
    let client = reqwest::Client::new();
    let too_many = json!({"detail": "Too many failed attempts, retry later"});

    // Four failures for carol, two on each replica: neither saw the limit alone.
    for server in [&a, &b, &a, &b] {
        assert_eq!(server.login(&client, "carol", "wrong").await.status(), 401);
    }
    for server in [&a, &b] {
        let resp = server.login(&client, "carol", "carol-pass-phrase").await;
        assert!(resp.headers().contains_key("retry-after"));
        assert_eq!(
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap()),
            (429, too_many.clone()),
            "carol's account is locked on {} too",
            server.url
        );
    }

    // The client address has four failures; two more, one on each, reach its limit of six,
    // and then it is refused on both, for dave too.
    assert_eq!(a.login(&client, "dave", "wrong").await.status(), 401);
    assert_eq!(b.login(&client, "dave", "wrong").await.status(), 401);
    for server in [&a, &b] {
        let resp = server.login(&client, "dave", "dave-pass-phrase").await;
        assert_eq!(
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap()),
            (429, too_many.clone()),
            "the address is limited on {} too",
            server.url
        );
    }
}

#[tokio::test]
async fn two_replicas_on_one_postgres_see_a_scope_removal_at_once() {
    let db = TestDb::postgres().await;
    let (a, b) = two_replicas(&db, &[]).await;
    user_command(
        &db,
        &["add", "carol", "--scopes", "me items"],
        "carol-pass-phrase\n",
    );
    let client = reqwest::Client::new();
    let items = |server: &ServingBinary, token: &str| {
        client
            .get(server.at("/users/me/items/"))
            .bearer_auth(token)
            .send()
    };
    let from_a = token(&client, &a, "carol", "carol-pass-phrase").await;
    for server in [&a, &b] {
        assert_eq!(items(server, &from_a).await.unwrap().status(), 200);
    }

    user_command(&db, &["scopes", "carol", "--set", "me"], "");
    for server in [&a, &b] {
        let resp = items(server, &from_a).await.unwrap();
        assert_eq!(
            resp.headers()["www-authenticate"],
            r#"Bearer scope="items me", error="insufficient_scope""#
        );
        assert_eq!(
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap()),
            (401, json!({"detail": "Not enough permissions"})),
            "the removal is seen on {} at once",
            server.url
        );
    }
    on_both(
        &client,
        &[&a, &b],
        &from_a,
        200,
        "the user is not logged out",
    )
    .await;
}

#[tokio::test]
async fn an_admin_api_change_on_one_replica_applies_on_the_other_at_once() {
    let db = TestDb::postgres().await;
    let (a, b) = two_replicas(&db, &[]).await;
    user_command(
        &db,
        &["add", "root", "--scopes", "admin"],
        "root-pass-phrase\n",
    );
    user_command(&db, &["add", "carol"], "carol-pass-phrase\n");
    let client = reqwest::Client::new();
    let admin = token(&client, &a, "root", "root-pass-phrase").await;
    let patch = |body: Value| {
        client
            .patch(a.at("/admin/users/carol"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let carols = token(&client, &b, "carol", "carol-pass-phrase").await;
    let items = |server: &ServingBinary| {
        client
            .get(server.at("/users/me/items/"))
            .bearer_auth(&carols)
            .send()
    };
    assert_eq!(items(&b).await.unwrap().status(), 200);

    assert_eq!(
        patch(json!({"scopes": ["me"]})).await.unwrap().status(),
        200
    );
    assert_eq!(
        items(&b).await.unwrap().status(),
        401,
        "scope taken away via a"
    );
    on_both(&client, &[&a, &b], &carols, 200, "not logged out").await;

    assert_eq!(
        patch(json!({"disabled": true})).await.unwrap().status(),
        200
    );
    on_both(&client, &[&a, &b], &carols, 401, "disabled via a").await;
}

/// `POST /token` with the refresh grant on `server`.
async fn refresh_on(client: &reqwest::Client, server: &ServingBinary, token: &str) -> (u16, Value) {
    let resp = client
        .post(server.at("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn pair_on(
    client: &reqwest::Client,
    server: &ServingBinary,
    user: &str,
    pw: &str,
) -> (String, String) {
    let resp = server.login(client, user, pw).await;
    assert_eq!(resp.status(), 200, "login of {user} on {}", server.url);
    let body: Value = resp.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn two_replicas_on_one_postgres_share_sessions_reuse_detection_and_revocation() {
    let db = TestDb::postgres().await;
    let (a, b) = two_replicas(&db, &[]).await;
    let both = [&a, &b];
    let client = reqwest::Client::new();
    user_command(&db, &["add", "carol"], "first-pass-phrase\n");

    // Rotated on A, the spent token presented on B ends the session on both.
    let (access, first) = pair_on(&client, &a, "carol", "first-pass-phrase").await;
    let (status, body) = refresh_on(&client, &a, &first).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    on_both(&client, &both, &access, 200, "a refreshed session").await;
    let (status, body) = refresh_on(&client, &b, &first).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "The refresh token was already used; the session is ended"})
        )
    );
    on_both(&client, &both, &access, 401, "after a reuse on B").await;
    assert_eq!(refresh_on(&client, &a, &second).await.0, 400);

    // Revoked on B, refused on A at once.
    let (access, refresh_token) = pair_on(&client, &a, "carol", "first-pass-phrase").await;
    let resp = client
        .post(b.at("/revoke"))
        .form(&[("token", refresh_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    on_both(&client, &both, &access, 401, "after /revoke on B").await;
    assert_eq!(refresh_on(&client, &a, &refresh_token).await.0, 400);

    // A password change on A ends the sessions started on B.
    let (on_b, on_b_refresh) = pair_on(&client, &b, "carol", "first-pass-phrase").await;
    let (on_a, _) = pair_on(&client, &a, "carol", "first-pass-phrase").await;
    let resp = client
        .post(a.at("/users/me/password"))
        .bearer_auth(&on_a)
        .json(
            &json!({"current_password": "first-pass-phrase", "new_password": "second-pass-phrase"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    on_both(&client, &both, &on_b, 401, "after a password change on A").await;
    assert_eq!(refresh_on(&client, &b, &on_b_refresh).await.0, 400);
    let (fresh, _) = pair_on(&client, &b, "carol", "second-pass-phrase").await;
    on_both(&client, &both, &fresh, 200, "a login with the new password").await;
}
