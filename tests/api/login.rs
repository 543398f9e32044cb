//! `POST /token`.

use std::time::{Duration, Instant};

use gatehouse::db::{self, user::NewUser};
use serde_json::{json, Value};

use crate::helpers::{parts, segment, spawn_app};

fn missing(field: &str) -> Value {
    json!({"type": "missing", "loc": ["body", field], "msg": "Field required", "input": null})
}

#[tokio::test]
async fn demo_user_logs_in_and_gets_an_uncacheable_bearer_token() {
    let app = spawn_app().await;
    let resp = app.login("johndoe", "secret").await;
    let (status, body, headers) = parts(resp, &["cache-control", "pragma", "content-type"]).await;
    assert_eq!(status, 200);
    assert_eq!(headers[0].as_deref(), Some("no-store"));
    assert_eq!(headers[1].as_deref(), Some("no-cache"));
    assert!(headers[2]
        .as_deref()
        .unwrap()
        .starts_with("application/json"));
    let obj = body.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        [
            "access_token",
            "token_type",
            "expires_in",
            "scope",
            "refresh_token"
        ]
    );
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);

    let token = body["access_token"].as_str().unwrap();
    assert!(
        token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."),
        "PyJWT's header bytes"
    );
    assert_eq!(segment(token, 0), json!({"alg": "HS256", "typ": "JWT"}));
    let claims = segment(token, 1);
    assert_eq!(claims["sub"], "johndoe");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1800
    );
}

#[tokio::test]
async fn token_lifetime_follows_access_token_expire_minutes() {
    let app = crate::helpers::spawn_app_with(|s| s.access_token_expire_minutes = 5).await;
    let resp = app.login("johndoe", "secret").await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], 300);
    let claims = segment(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
}

#[tokio::test]
async fn multipart_form_logs_in_too() {
    let app = spawn_app().await;
    let form = reqwest::multipart::Form::new()
        .text("username", "johndoe")
        .text("password", "secret");
    let resp = app
        .client
        .post(app.url("/token"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn swagger_ui_style_form_with_grant_type_scope_and_client_fields_logs_in() {
    let app = spawn_app().await;
    let resp = app
        .post_form(
            "/token",
            &[
                ("grant_type", "password"),
                ("username", "johndoe"),
                ("password", "secret"),
                ("scope", "me items"),
                ("client_id", "swagger"),
                ("client_secret", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    let expected = (
        401,
        json!({"detail": "Incorrect username or password"}),
        vec![
            Some("Bearer".to_owned()),
            Some("application/json".to_owned()),
        ],
    );
    for (user, password) in [
        ("johndoe", "wrong"),
        ("nobody", "secret"),
        ("johndoe", "Secret"),
    ] {
        let resp = app.login(user, password).await;
        assert_eq!(
            parts(resp, &["www-authenticate", "content-type"]).await,
            expected,
            "{user}"
        );
    }
}

#[tokio::test]
async fn missing_fields_get_one_422_entry_each() {
    let app = spawn_app().await;
    let resp = app.post_form("/token", &[("scope", "x")]).await;
    let (status, body, _) = parts(resp, &[]).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [missing("username"), missing("password")]})
    );

    let resp = app.post_form("/token", &[("username", "johndoe")]).await;
    assert_eq!(
        parts(resp, &[]).await.1,
        json!({"detail": [missing("password")]})
    );
}

#[tokio::test]
async fn empty_fields_count_as_missing() {
    let app = spawn_app().await;
    let resp = app.login("", "").await;
    let (status, body, _) = parts(resp, &[]).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [missing("username"), missing("password")]})
    );
}

#[tokio::test]
async fn grant_type_other_than_password_is_a_pattern_mismatch() {
    let app = spawn_app().await;
    let resp = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("username", "johndoe"),
                ("password", "secret"),
            ],
        )
        .await;
    let text = resp.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"detail":[{"type":"string_pattern_mismatch","loc":["body","grant_type"],"msg":"String should match pattern '^password$'","input":"client_credentials","ctx":{"pattern":"^password$"}}]}"#
    );
}

#[tokio::test]
async fn missing_field_body_is_byte_identical_to_fastapi() {
    let app = spawn_app().await;
    let resp = app.post_form("/token", &[("password", "x")]).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"detail":[{"type":"missing","loc":["body","username"],"msg":"Field required","input":null}]}"#
    );
}

#[tokio::test]
async fn json_or_other_bodies_get_the_missing_field_entries() {
    let app = spawn_app().await;
    let expected = json!({"detail": [missing("username"), missing("password")]});
    let json_body = app
        .client
        .post(app.url("/token"))
        .json(&json!({"username": "johndoe", "password": "secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(json_body, &[]).await, (422, expected.clone(), vec![]));
    let no_body = app.client.post(app.url("/token")).send().await.unwrap();
    assert_eq!(parts(no_body, &[]).await, (422, expected.clone(), vec![]));
    let text = app
        .post_token_body("text/plain", "username=johndoe&password=secret")
        .await;
    assert_eq!(parts(text, &[]).await, (422, expected, vec![]));
}

#[tokio::test]
async fn username_limit_is_128_characters() {
    let app = spawn_app().await;
    let at_limit = "é".repeat(128);
    assert_eq!(app.login(&at_limit, "secret").await.status(), 401);

    let over = "u".repeat(129);
    let (status, body, _) = parts(app.login(&over, "secret").await, &[]).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"type": "string_too_long", "loc": ["body", "username"],
            "msg": "String should have at most 128 characters", "input": over,
            "ctx": {"max_length": 128}}]})
    );
}

#[tokio::test]
async fn password_limit_is_1024_bytes_and_an_over_long_one_is_never_echoed() {
    let app = spawn_app().await;
    assert_eq!(app.login("johndoe", &"p".repeat(1024)).await.status(), 401);

    // 513 two-byte characters: 1026 bytes.
    let over = "é".repeat(513);
    let (status, body, _) = parts(app.login("johndoe", &over).await, &[]).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"type": "string_too_long", "loc": ["body", "password"],
            "msg": "String should have at most 1024 bytes", "input": "**********",
            "ctx": {"max_length": 1024}}]})
    );
}

#[tokio::test]
async fn body_over_16_kib_is_413_declared_or_streamed() {
    let app = spawn_app().await;
    let expected = (413, json!({"detail": "Request body too large"}), vec![]);
    let filler = "a".repeat(16 * 1024);
    let declared = app
        .post_token_body(
            "application/x-www-form-urlencoded",
            format!("username=johndoe&password=secret&scope={filler}"),
        )
        .await;
    assert_eq!(parts(declared, &[]).await, expected);

    let chunks: Vec<Result<String, std::io::Error>> = vec![
        Ok("username=johndoe&password=secret&scope=".to_owned()),
        Ok(filler),
    ];
    let streamed = app
        .post_token_body(
            "application/x-www-form-urlencoded",
            reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)),
        )
        .await;
    assert_eq!(parts(streamed, &[]).await, expected);

    // Exactly 16 KiB is accepted.
    let base = "username=johndoe&password=secret&scope=";
    let exact = format!("{base}{}", "a".repeat(16 * 1024 - base.len()));
    let ok = app
        .post_token_body("application/x-www-form-urlencoded", exact)
        .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn disabled_user_gets_a_token_but_is_inactive_everywhere_else() {
    let app = spawn_app().await;
    let token = app.token("alice", "secret2").await;
    for path in ["/users/me/", "/users/me/items/"] {
        let resp = app.get(path, Some(&format!("Bearer {token}"))).await;
        assert_eq!(
            parts(resp, &["www-authenticate"]).await,
            (400, json!({"detail": "Inactive user"}), vec![None])
        );
    }
}

#[tokio::test]
async fn legacy_hashes_verify_and_are_replaced_by_argon2id_on_login() {
    let app = spawn_app().await;
    let bcrypt_2b = "$2b$04$Vf0sk9DYpJSvGFPbYJFvUepGgKAXN7fxNFOr9vIm3g.6z6xdLA5Qy"; // "legacy-pass"
    let legacy = [
        ("bcrypt2b", bcrypt_2b.to_owned(), "legacy-pass"),
        ("bcrypt2a", bcrypt_2b.replacen("$2b$", "$2a$", 1), "legacy-pass"),
        ("bcrypt2y", bcrypt_2b.replacen("$2b$", "$2y$", 1), "legacy-pass"),
        (
            "argon2weak",
            "$argon2id$v=19$m=19456,t=2,p=1$CW+CpFWFO1+meCaQe66xgA$3uXlrP6Lf9gRp4jJpC6AwYHn5/iJlk6rc7EfhnMovow".to_owned(),
            "older-pass",
        ),
    ];
    for (username, hash, password) in legacy {
        db::user::create(
            &app.db,
            NewUser {
                username: username.into(),
                email: None,
                full_name: None,
                hashed_password: hash,
                disabled: false,
                username_skeleton: None,
                scopes: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            app.login(username, "wrong").await.status(),
            401,
            "{username}"
        );
        let token = app.token(username, password).await;

        let stored = db::user::find(&app.db, username).await.unwrap().unwrap();
        assert!(
            stored
                .hashed_password
                .starts_with("$argon2id$v=19$m=65536,t=3,p=4$"),
            "{username}: {}",
            stored.hashed_password
        );
        assert_eq!(
            stored.token_version, 0,
            "an upgrade is not a password change"
        );
        assert_eq!(
            app.me(&token).await.status(),
            200,
            "the upgrade revokes nothing"
        );
        app.token(username, password).await;
    }
}

#[tokio::test]
async fn multipart_bodies_get_the_same_422_and_413() {
    let app = spawn_app().await;
    let form = reqwest::multipart::Form::new().text("username", "johndoe");
    let resp = app
        .client
        .post(app.url("/token"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts(resp, &[]).await,
        (422, json!({"detail": [missing("password")]}), vec![])
    );

    let form = reqwest::multipart::Form::new()
        .text("username", "johndoe")
        .text("password", "secret")
        .text("scope", "s".repeat(16 * 1024));
    let resp = app
        .client
        .post(app.url("/token"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts(resp, &[]).await,
        (413, json!({"detail": "Request body too large"}), vec![])
    );
}

#[tokio::test]
async fn saturated_hashing_answers_503_with_retry_after_and_recovers() {
    // One worker and one queue slot: 16 simultaneous logins cannot all be taken.
    let app = crate::helpers::spawn_app_with(|s| {
        s.hash_workers = Some(1);
        s.hash_queue_per_worker = 1;
    })
    .await;
    let logins = (0..16).map(|_| app.login("johndoe", "secret"));
    let responses = futures_util::future::join_all(logins).await;
    let mut busy = 0;
    for resp in responses {
        match resp.status().as_u16() {
            200 => {}
            503 => {
                busy += 1;
                assert_eq!(
                    parts(resp, &["retry-after"]).await,
                    (
                        503,
                        json!({"detail": "Server busy, retry later"}),
                        vec![Some("1".to_owned())]
                    )
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        busy >= 14,
        "at most 2 of 16 simultaneous logins fit; {busy} were refused"
    );
    assert_eq!(
        app.login("johndoe", "secret").await.status(),
        200,
        "the service recovers"
    );
}

#[tokio::test]
async fn a_nul_in_the_username_is_just_an_unknown_user() {
    let app = spawn_app().await;
    let resp = app.login("john\0doe", "secret").await;
    assert_eq!(
        parts(resp, &[]).await,
        (
            401,
            json!({"detail": "Incorrect username or password"}),
            vec![]
        )
    );
}

/// Unknown users are verified against a dummy hash, so both failures cost one argon2 run.
/// Compared as medians of interleaved attempts with a generous margin: this checks the
/// code path, not the machine's timing precision.
#[tokio::test]
async fn unknown_user_and_wrong_password_take_comparable_time() {
    let app = spawn_app().await;
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        assert_eq!(app.login("nobody", "secret").await.status(), 401);
        unknown.push(start.elapsed());
        let start = Instant::now();
        assert_eq!(app.login("johndoe", "nope").await.status(), 401);
        wrong.push(start.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let ratio = median(&mut unknown) / median(&mut wrong);
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown/wrong median ratio {ratio:.2}"
    );
}
