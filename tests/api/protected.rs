//! `GET /users/me/` and `GET /users/me/items/`: the bearer checks.

use gatehouse::db::{self, user::NewUser};
use serde_json::{json, Value};

use crate::helpers::{forge, now, parts, spawn_app, spawn_app_with, TestApp, TEST_SECRET};

fn not_authenticated() -> (u16, Value, Vec<Option<String>>) {
    (
        401,
        json!({"detail": "Not authenticated"}),
        vec![Some("Bearer".to_owned())],
    )
}

fn invalid_token() -> (u16, Value, Vec<Option<String>>) {
    (
        401,
        json!({"detail": "Could not validate credentials"}),
        vec![Some(
            "Bearer scope=\"me\", error=\"invalid_token\"".to_owned(),
        )],
    )
}

async fn me_with(app: &TestApp, authorization: Option<&str>) -> (u16, Value, Vec<Option<String>>) {
    parts(
        app.get("/users/me/", authorization).await,
        &["www-authenticate"],
    )
    .await
}

fn header() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "uid": 1, "exp": now() + 600, "iat": now(), "ver": 0})
}

#[tokio::test]
async fn current_user_is_returned_with_every_field() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    let (status, body, _) = parts(app.me(&token).await, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"username": "johndoe", "email": "johndoe@example.com", "full_name": "John Doe", "disabled": false})
    );
}

#[tokio::test]
async fn absent_user_fields_are_null() {
    let app = spawn_app().await;
    db::user::create(
        &app.db,
        NewUser {
            username: "bare".into(),
            email: None,
            full_name: None,
            hashed_password: gatehouse::auth::password::hash_password("pw").unwrap(),
            disabled: false,
            username_skeleton: None,
            scopes: None,
        },
    )
    .await
    .unwrap();
    let token = app.token("bare", "pw").await;
    let text = app.me(&token).await.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"username":"bare","email":null,"full_name":null,"disabled":false}"#
    );
}

#[tokio::test]
async fn own_items_belong_to_the_current_user() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    let resp = app
        .get("/users/me/items/", Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(
        parts(resp, &[]).await,
        (200, json!([{"item_id": "Foo", "owner": "johndoe"}]), vec![])
    );
}

#[tokio::test]
async fn missing_header_or_other_scheme_is_not_authenticated() {
    let app = spawn_app().await;
    assert_eq!(me_with(&app, None).await, not_authenticated());
    assert_eq!(
        me_with(&app, Some("Basic am9obmRvZTpzZWNyZXQ=")).await,
        not_authenticated()
    );
    assert_eq!(me_with(&app, Some("Token abc")).await, not_authenticated());
    assert_eq!(me_with(&app, Some("")).await, not_authenticated());
    let items = app.get("/users/me/items/", None).await;
    assert_eq!(
        parts(items, &["www-authenticate"]).await,
        not_authenticated()
    );
}

#[tokio::test]
async fn bearer_scheme_name_is_case_insensitive() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let resp = app
            .get("/users/me/", Some(&format!("{scheme} {token}")))
            .await;
        assert_eq!(resp.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn empty_and_malformed_bearer_tokens_are_invalid() {
    let app = spawn_app().await;
    for value in [
        "Bearer ",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer  extra-space",
    ] {
        assert_eq!(
            me_with(&app, Some(value)).await,
            invalid_token(),
            "{value:?}"
        );
    }
}

#[tokio::test]
async fn forged_and_stale_tokens_are_invalid() {
    let app = spawn_app().await;
    let good = forge(&header(), &claims("johndoe"), TEST_SECRET);
    assert_eq!(
        me_with(&app, Some(&format!("Bearer {good}"))).await.0,
        200,
        "the forge helper makes valid tokens"
    );

    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });

    let unsigned = {
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[0] = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        format!("{}.{}.", parts[0], parts[1])
    };
    let t = now();
    let cases: Vec<(&str, String)> = vec![
        ("tampered signature", tampered),
        ("alg none", unsigned),
        (
            "other key",
            forge(
                &header(),
                &claims("johndoe"),
                "another-secret-key-that-is-long-enough-000",
            ),
        ),
        (
            "HS512 header",
            forge(
                &json!({"alg": "HS512", "typ": "JWT"}),
                &claims("johndoe"),
                TEST_SECRET,
            ),
        ),
        (
            "RS256 header",
            forge(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &claims("johndoe"),
                TEST_SECRET,
            ),
        ),
        (
            "expired",
            forge(
                &header(),
                &json!({"sub": "johndoe", "exp": t - 60, "iat": t - 120, "ver": 0}),
                TEST_SECRET,
            ),
        ),
        (
            "nbf in the future",
            forge(
                &header(),
                &json!({"sub": "johndoe", "exp": t + 600, "nbf": t + 300, "ver": 0}),
                TEST_SECRET,
            ),
        ),
        (
            "iat in the future",
            forge(
                &header(),
                &json!({"sub": "johndoe", "exp": t + 600, "iat": t + 300, "ver": 0}),
                TEST_SECRET,
            ),
        ),
        (
            "no exp",
            forge(
                &header(),
                &json!({"sub": "johndoe", "iat": t, "ver": 0}),
                TEST_SECRET,
            ),
        ),
        (
            "no sub",
            forge(
                &header(),
                &json!({"exp": t + 600, "iat": t, "ver": 0}),
                TEST_SECRET,
            ),
        ),
        (
            "numeric sub",
            forge(
                &header(),
                &json!({"sub": 42, "exp": t + 600, "iat": t, "ver": 0}),
                TEST_SECRET,
            ),
        ),
        (
            "null sub",
            forge(
                &header(),
                &json!({"sub": null, "exp": t + 600, "iat": t, "ver": 0}),
                TEST_SECRET,
            ),
        ),
        (
            "no token version",
            forge(
                &header(),
                &json!({"sub": "johndoe", "exp": t + 600, "iat": t}),
                TEST_SECRET,
            ),
        ),
        (
            "stale token version",
            forge(
                &header(),
                &json!({"sub": "johndoe", "exp": t + 600, "iat": t, "ver": 7}),
                TEST_SECRET,
            ),
        ),
        (
            "unknown user",
            forge(&header(), &claims("nobody"), TEST_SECRET),
        ),
    ];
    for (name, token) in cases {
        assert_eq!(
            me_with(&app, Some(&format!("Bearer {token}"))).await,
            invalid_token(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn password_change_and_disable_revoke_earlier_tokens() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    assert_eq!(app.me(&token).await.status(), 200);
    let new_hash = gatehouse::auth::password::hash_password("new-secret").unwrap();
    assert!(db::user::change_password(&app.db, "johndoe", new_hash)
        .await
        .unwrap());
    assert_eq!(
        parts(app.me(&token).await, &["www-authenticate"]).await,
        invalid_token()
    );
    assert_eq!(app.login("johndoe", "secret").await.status(), 401);
    let fresh = app.token("johndoe", "new-secret").await;
    assert_eq!(app.me(&fresh).await.status(), 200);

    assert!(db::user::set_disabled(&app.db, "johndoe", true)
        .await
        .unwrap());
    assert_eq!(
        parts(app.me(&fresh).await, &["www-authenticate"]).await,
        invalid_token()
    );
    let while_disabled = app.token("johndoe", "new-secret").await;
    assert_eq!(app.me(&while_disabled).await.status(), 400);
    assert!(db::user::set_disabled(&app.db, "johndoe", false)
        .await
        .unwrap());
    assert_eq!(
        app.me(&while_disabled).await.status(),
        200,
        "enabling revokes nothing"
    );
}

#[tokio::test]
async fn issuer_and_audience_are_issued_and_required_when_configured() {
    let app = spawn_app_with(|s| {
        s.jwt_issuer = Some("https://auth.example".into());
        s.jwt_audience = Some("api".into());
    })
    .await;
    let token = app.token("johndoe", "secret").await;
    let claims = crate::helpers::segment(&token, 1);
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].as_str()),
        (Some("https://auth.example"), Some("api"))
    );
    assert_eq!(app.me(&token).await.status(), 200);

    let t = now();
    let base = json!({"sub": "johndoe", "exp": t + 600, "iat": t, "ver": 0});
    let mut wrong_aud = base.clone();
    wrong_aud["iss"] = json!("https://auth.example");
    wrong_aud["aud"] = json!("other");
    let mut no_iss = base.clone();
    no_iss["aud"] = json!("api");
    let mut no_aud = base.clone();
    no_aud["iss"] = json!("https://auth.example");
    let mut wrong_iss = base.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    wrong_iss["aud"] = json!("api");
    let cases = [
        ("no iss/aud", base),
        ("wrong aud", wrong_aud),
        ("no iss", no_iss),
        ("no aud", no_aud),
        ("wrong iss", wrong_iss),
    ];
    for (name, claims) in cases {
        let token = forge(&header(), &claims, TEST_SECRET);
        assert_eq!(
            me_with(&app, Some(&format!("Bearer {token}"))).await,
            invalid_token(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn expiry_has_a_few_seconds_of_leeway_and_no_more() {
    let app = spawn_app().await;
    let t = now();
    let just_expired = forge(
        &header(),
        &json!({"sub": "johndoe", "uid": 1, "exp": t - 1, "iat": t - 60, "ver": 0}),
        TEST_SECRET,
    );
    assert_eq!(
        me_with(&app, Some(&format!("Bearer {just_expired}")))
            .await
            .0,
        200
    );
    let expired = forge(
        &header(),
        &json!({"sub": "johndoe", "exp": t - 31, "iat": t - 60, "ver": 0}),
        TEST_SECRET,
    );
    assert_eq!(
        me_with(&app, Some(&format!("Bearer {expired}"))).await,
        invalid_token()
    );
}

#[tokio::test]
async fn head_works_on_the_protected_routes() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    for path in ["/users/me/", "/users/me/items/"] {
        let resp = app
            .client
            .head(app.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.text().await.unwrap(), "");
        let anonymous = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
    }
}
