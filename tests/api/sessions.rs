//! Sessions, refresh tokens, revocation and self-service (SPEC §7), through real HTTP on
//! the suite's backend (SQLite, or PostgreSQL with `DATABASE_URL`).

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::helpers::{gatehouse_cli, now, parts, segment, spawn_app, spawn_app_with, TestApp};

/// A login's access and refresh token.
pub async fn login_pair(app: &TestApp, username: &str, password: &str) -> (String, String) {
    let resp = app.login(username, password).await;
    assert_eq!(resp.status(), 200, "login of {username}");
    pair(resp.json().await.unwrap())
}

pub fn pair(body: Value) -> (String, String) {
    (
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    )
}

pub async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.post_form(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.me(token).await.status().as_u16()
}

const OAUTH_HEADERS: [&str; 2] = ["cache-control", "pragma"];

fn oauth_error(error: &str, description: &str) -> (u16, Value, Vec<Option<String>>) {
    (
        400,
        json!({"error": error, "error_description": description}),
        vec![Some("no-store".to_owned()), Some("no-cache".to_owned())],
    )
}

const INVALID_GRANT: &str = "The refresh token is invalid, expired or revoked";
const REUSED: &str = "The refresh token was already used; the session is ended";

#[tokio::test]
async fn a_password_login_returns_a_refresh_token_and_an_access_token_of_its_session() {
    let app = spawn_app().await;
    let resp = app.login("johndoe", "secret").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "token_type",
            "expires_in",
            "scope",
            "refresh_token"
        ]
    );
    let (access, refresh_token) = pair(body);
    // The session id, its rotation count and a 256-bit MAC, base64url without padding.
    assert_eq!(refresh_token.len(), 83);
    assert!(refresh_token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    let sid = segment(&access, 1)["sid"].as_str().unwrap().to_owned();
    assert_eq!(sid.len(), 22, "128 random bits, base64url");
    let (other, _) = login_pair(&app, "johndoe", "secret").await;
    assert_ne!(
        segment(&other, 1)["sid"],
        json!(sid),
        "each login is a session"
    );
}

#[tokio::test]
async fn the_refresh_grant_returns_a_new_pair_and_spends_the_presented_token() {
    let app = spawn_app().await;
    let (access, first) = login_pair(&app, "johndoe", "secret").await;

    let resp = refresh(&app, &first).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["scope"], "me items admin introspect");
    let (new_access, second) = pair(body);
    assert_ne!(second, first);
    assert_eq!(segment(&new_access, 1)["sid"], segment(&access, 1)["sid"]);
    assert_eq!(me_status(&app, &new_access).await, 200);
    assert_eq!(me_status(&app, &access).await, 200, "the session lives on");

    let third = pair(refresh(&app, &second).await.json().await.unwrap()).1;
    assert_ne!(third, second);
}

#[tokio::test]
async fn presenting_a_spent_refresh_token_again_ends_the_whole_session() {
    let app = spawn_app().await;
    let (access, first) = login_pair(&app, "johndoe", "secret").await;
    let (new_access, second) = pair(refresh(&app, &first).await.json().await.unwrap());
    let (other_access, other_refresh) = login_pair(&app, "johndoe", "secret").await;

    assert_eq!(
        parts(refresh(&app, &first).await, &OAUTH_HEADERS).await,
        oauth_error("invalid_grant", REUSED)
    );
    // Every token of the session stops working at once...
    assert_eq!(
        parts(refresh(&app, &second).await, &OAUTH_HEADERS).await,
        oauth_error("invalid_grant", INVALID_GRANT)
    );
    let (status, body, challenge) = parts(app.me(&new_access).await, &["www-authenticate"]).await;
    assert_eq!(
        (status, body, challenge),
        (
            401,
            json!({"detail": "Could not validate credentials"}),
            vec![Some(
                r#"Bearer scope="me", error="invalid_token""#.to_owned()
            )]
        )
    );
    assert_eq!(me_status(&app, &access).await, 401);
    // ...and no other session of the user.
    assert_eq!(me_status(&app, &other_access).await, 200);
    assert_eq!(refresh(&app, &other_refresh).await.status(), 200);
}

#[tokio::test]
async fn within_the_reuse_interval_the_previous_token_answers_the_current_one_and_no_older_one_does(
) {
    let app = spawn_app_with(|s| s.refresh_reuse_interval_secs = 10).await;
    let (_, first) = login_pair(&app, "johndoe", "secret").await;
    let (_, second) = pair(refresh(&app, &first).await.json().await.unwrap());

    let resp = refresh(&app, &first).await;
    assert_eq!(resp.status(), 200);
    let (again_access, again) = pair(resp.json().await.unwrap());
    assert_eq!(again, second, "the session's current refresh token");
    assert_eq!(me_status(&app, &again_access).await, 200);
    // The current one still rotates as usual.
    let (third_access, third) = pair(refresh(&app, &second).await.json().await.unwrap());
    assert_ne!(third, second);
    // Only the token just before the current one may come again: the first is now two
    // back, and presenting it ends the session.
    assert_eq!(
        parts(refresh(&app, &first).await, &OAUTH_HEADERS).await,
        oauth_error("invalid_grant", REUSED)
    );
    assert_eq!(me_status(&app, &third_access).await, 401);
    assert_eq!(refresh(&app, &third).await.status(), 400);
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
    let app = spawn_app().await;
    let body = app.login_with_scope("johndoe", "secret", "me items").await;
    let (_, first) = pair(body);

    let resp = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first),
                ("scope", "me admin"),
            ],
        )
        .await;
    assert_eq!(
        parts(resp, &OAUTH_HEADERS).await,
        oauth_error(
            "invalid_scope",
            "The requested scope exceeds the scope granted at login"
        )
    );
    // A refused scope does not spend the token.
    let resp = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first),
                ("scope", "me"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (access, second) = pair(resp.json().await.unwrap());
    assert_eq!(segment(&access, 1)["scope"], "me");
    let items = app
        .get("/users/me/items/", Some(&format!("Bearer {access}")))
        .await;
    assert_eq!(items.status(), 401);
    // Without scope: everything granted at login again.
    let body: Value = refresh(&app, &second).await.json().await.unwrap();
    assert_eq!(body["scope"], "me items");
}

#[tokio::test]
async fn refresh_grant_errors_are_oauth_errors() {
    let app = spawn_app().await;
    let missing = app
        .post_form("/token", &[("grant_type", "refresh_token")])
        .await;
    assert_eq!(
        parts(missing, &OAUTH_HEADERS).await,
        oauth_error("invalid_request", "The refresh_token parameter is missing")
    );
    for token in ["nonsense", &"x".repeat(5000)] {
        assert_eq!(
            parts(refresh(&app, token).await, &OAUTH_HEADERS).await,
            oauth_error("invalid_grant", INVALID_GRANT)
        );
    }
    // An access token is no refresh token.
    let (access, _) = login_pair(&app, "johndoe", "secret").await;
    assert_eq!(
        parts(refresh(&app, &access).await, &OAUTH_HEADERS).await,
        oauth_error("invalid_grant", INVALID_GRANT)
    );
    // The password grant keeps FastAPI's answers.
    let resp = app.post_form("/token", &[("grant_type", "password")]).await;
    assert_eq!(resp.status(), 422);
}

#[tokio::test]
async fn with_refresh_tokens_disabled_logins_get_none_and_the_grant_is_unsupported() {
    let app = spawn_app_with(|s| s.refresh_token_expire_days = 0).await;
    let body: Value = app.login("johndoe", "secret").await.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert!(segment(access, 1)["sid"].is_string());
    assert_eq!(me_status(&app, access).await, 200);
    assert_eq!(
        parts(refresh(&app, "anything").await, &OAUTH_HEADERS).await,
        oauth_error(
            "unsupported_grant_type",
            "Refresh tokens are not issued by this server"
        )
    );
}

async fn revoke(app: &TestApp, fields: &[(&str, &str)]) -> (u16, Value, Vec<Option<String>>) {
    parts(app.post_form("/revoke", fields).await, &["content-length"]).await
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_session_at_once() {
    let app = spawn_app().await;
    let (access, refresh_token) = login_pair(&app, "johndoe", "secret").await;
    let (other, _) = login_pair(&app, "johndoe", "secret").await;

    let empty = (200, Value::Null, vec![Some("0".to_owned())]);
    assert_eq!(
        revoke(
            &app,
            &[
                ("token", &refresh_token),
                ("token_type_hint", "refresh_token")
            ]
        )
        .await,
        empty
    );
    assert_eq!(me_status(&app, &access).await, 401);
    assert_eq!(
        parts(refresh(&app, &refresh_token).await, &OAUTH_HEADERS).await,
        oauth_error("invalid_grant", INVALID_GRANT)
    );
    assert_eq!(me_status(&app, &other).await, 200);
    // Again, and unknown tokens: the same answer.
    assert_eq!(revoke(&app, &[("token", &refresh_token)]).await, empty);
    assert_eq!(revoke(&app, &[("token", "unknown")]).await, empty);
}

#[tokio::test]
async fn revoking_an_access_token_ends_its_session_whatever_the_hint() {
    let app = spawn_app().await;
    for hint in [
        None,
        Some("access_token"),
        Some("refresh_token"),
        Some("bogus"),
    ] {
        let (access, refresh_token) = login_pair(&app, "johndoe", "secret").await;
        let mut fields = vec![("token", access.as_str())];
        if let Some(hint) = hint {
            fields.push(("token_type_hint", hint));
        }
        assert_eq!(revoke(&app, &fields).await.0, 200, "{hint:?}");
        assert_eq!(me_status(&app, &access).await, 401, "{hint:?}");
        assert_eq!(
            refresh(&app, &refresh_token).await.status(),
            400,
            "{hint:?}"
        );
    }
}

#[tokio::test]
async fn revoke_without_a_token_is_an_invalid_request() {
    let app = spawn_app().await;
    for fields in [
        vec![],
        vec![("token", "")],
        vec![("token_type_hint", "access_token")],
    ] {
        assert_eq!(
            parts(app.post_form("/revoke", &fields).await, &OAUTH_HEADERS).await,
            oauth_error("invalid_request", "The token parameter is missing")
        );
    }
}

#[tokio::test]
async fn the_user_lists_their_sessions_and_ends_one() {
    let app = spawn_app().await;
    let before = now();
    let first = app
        .client
        .post(app.url("/token"))
        .header("user-agent", "first-client/1.0")
        .form(&[("username", "johndoe"), ("password", "secret")])
        .send()
        .await
        .unwrap();
    let (first_access, first_refresh) = pair(first.json().await.unwrap());
    let (current, _) = login_pair(&app, "johndoe", "secret").await;
    let (alice, _) = {
        // Another user's session, to prove it is neither listed nor deletable.
        gatehouse_cli(&app.settings.database_url, &["user", "enable", "alice"], "");
        login_pair(&app, "alice", "secret2").await
    };

    let resp = send(
        &app,
        reqwest::Method::GET,
        "/users/me/sessions/",
        &current,
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let sessions: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let sid = |token: &str| segment(token, 1)["sid"].as_str().unwrap().to_owned();
    let mine = sessions.iter().find(|s| s["id"] == sid(&current)).unwrap();
    let other = sessions
        .iter()
        .find(|s| s["id"] == sid(&first_access))
        .unwrap();
    assert_eq!(mine["current"], true);
    assert_eq!(other["current"], false);
    assert_eq!(other["user_agent"], "first-client/1.0");
    assert_eq!(other["client_address"], "127.0.0.1");
    let keys: Vec<&String> = other.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "created_at",
            "last_used_at",
            "client_address",
            "user_agent",
            "current"
        ]
    );
    let created = chrono::DateTime::parse_from_rfc3339(other["created_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!(created >= before - 1 && created <= now() + 1);

    let end = |id: String| {
        let app = &app;
        let current = current.clone();
        async move {
            let path = format!("/users/me/sessions/{id}");
            parts(
                send(app, reqwest::Method::DELETE, &path, &current, None).await,
                &[],
            )
            .await
        }
    };
    assert_eq!(end(sid(&first_access)).await, (204, Value::Null, vec![]));
    assert_eq!(me_status(&app, &first_access).await, 401);
    assert_eq!(refresh(&app, &first_refresh).await.status(), 400);
    let not_found = (404, json!({"detail": "Session not found"}), vec![]);
    assert_eq!(end(sid(&first_access)).await, not_found, "already ended");
    assert_eq!(end("unknown".to_owned()).await, not_found);
    assert_eq!(end(sid(&alice)).await, not_found, "another user's");
    assert_eq!(me_status(&app, &alice).await, 200);
    // Ending the current session logs this client out.
    assert_eq!(end(sid(&current)).await.0, 204);
    assert_eq!(me_status(&app, &current).await, 401);
}

#[tokio::test]
async fn live_sessions_per_user_are_bounded_and_the_oldest_ends_first() {
    let app = spawn_app_with(|s| s.max_sessions_per_user = 2).await;
    // Within one second: the order of logins is the order of sessions, not their clock.
    let (oldest, oldest_refresh) = login_pair(&app, "johndoe", "secret").await;
    let (middle, _) = login_pair(&app, "johndoe", "secret").await;
    let (newest, _) = login_pair(&app, "johndoe", "secret").await;
    assert_eq!(me_status(&app, &oldest).await, 401);
    assert_eq!(refresh(&app, &oldest_refresh).await.status(), 400);
    assert_eq!(me_status(&app, &middle).await, 200);
    let sessions: Vec<Value> = send(
        &app,
        reqwest::Method::GET,
        "/users/me/sessions/",
        &newest,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(sessions.len(), 2);
}

#[tokio::test]
async fn with_one_session_per_user_a_login_always_ends_the_previous_one_never_itself() {
    let app = spawn_app_with(|s| s.max_sessions_per_user = 1).await;
    for trial in 0..10 {
        let (previous, _) = login_pair(&app, "johndoe", "secret").await;
        let (latest, latest_refresh) = login_pair(&app, "johndoe", "secret").await;
        assert_eq!(me_status(&app, &latest).await, 200, "trial {trial}");
        assert_eq!(me_status(&app, &previous).await, 401, "trial {trial}");
        assert_eq!(
            refresh(&app, &latest_refresh).await.status(),
            200,
            "trial {trial}"
        );
    }
}

#[tokio::test]
async fn a_session_behind_its_users_token_version_is_dead_for_bearer_and_refresh() {
    let app = spawn_app().await;
    let (access, refresh_token) = login_pair(&app, "johndoe", "secret").await;
    let (other, _) = login_pair(&app, "johndoe", "secret").await;
    // As a login that raced a password change would have left it, had its insert not
    // been refused: the session one version behind its user, the token current.
    let sid = segment(&access, 1)["sid"].as_str().unwrap().to_owned();
    let backend = app.db.get_database_backend();
    app.db
        .execute(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DatabaseBackend::Postgres => {
                    "UPDATE sessions SET token_version = token_version - 1 WHERE id = $1"
                }
                _ => "UPDATE sessions SET token_version = token_version - 1 WHERE id = ?",
            },
            [sid.into()],
        ))
        .await
        .unwrap();
    assert_eq!(me_status(&app, &access).await, 401);
    assert_eq!(
        parts(refresh(&app, &refresh_token).await, &OAUTH_HEADERS).await,
        oauth_error("invalid_grant", INVALID_GRANT)
    );
    let listed: Vec<Value> = send(
        &app,
        reqwest::Method::GET,
        "/users/me/sessions/",
        &other,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        listed.len(),
        1,
        "only the live session is listed: {listed:?}"
    );
    assert_eq!(me_status(&app, &other).await, 200);
}

#[tokio::test]
async fn expired_sessions_are_purged() {
    let app = spawn_app().await;
    let (access, refresh_token) = login_pair(&app, "johndoe", "secret").await;
    let purged = gatehouse::db::session::purge_expired(&app.db, now())
        .await
        .unwrap();
    assert_eq!(purged, 0, "nothing live is purged");
    assert_eq!(me_status(&app, &access).await, 200);
    // Fifteen days on, the 14-day refresh token and its session are gone.
    let purged = gatehouse::db::session::purge_expired(&app.db, now() + 15 * 86_400)
        .await
        .unwrap();
    assert_eq!(purged, 1, "the session");
    assert_eq!(me_status(&app, &access).await, 401);
    assert_eq!(refresh(&app, &refresh_token).await.status(), 400);
}

#[tokio::test]
async fn the_user_updates_their_email_and_full_name() {
    let app = spawn_app().await;
    let (access, _) = login_pair(&app, "johndoe", "secret").await;
    let patch = |body: Value| {
        send(
            &app,
            reqwest::Method::PATCH,
            "/users/me/",
            &access,
            Some(body),
        )
    };

    let (status, body, _) = parts(patch(json!({"email": "john@example.org"})).await, &[]).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"username": "johndoe", "email": "john@example.org", "full_name": "John Doe", "disabled": false})
        )
    );
    let (status, body, _) = parts(patch(json!({"full_name": null})).await, &[]).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"username": "johndoe", "email": "john@example.org", "full_name": null, "disabled": false})
        )
    );
    let me: Value = app.me(&access).await.json().await.unwrap();
    assert_eq!(me["full_name"], Value::Null);
    let (status, body, _) = parts(patch(json!({"email": 5})).await, &[]).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "email"]));
    assert_eq!(
        me_status(&app, &access).await,
        200,
        "a profile change revokes nothing"
    );
}

async fn change_password(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> reqwest::Response {
    send(
        app,
        reqwest::Method::POST,
        "/users/me/password",
        token,
        Some(json!({"current_password": current, "new_password": new})),
    )
    .await
}

#[tokio::test]
async fn a_password_change_ends_every_session_and_token_of_the_user() {
    let app = spawn_app().await;
    let (access, refresh_token) = login_pair(&app, "johndoe", "secret").await;
    let (other, other_refresh) = login_pair(&app, "johndoe", "secret").await;

    let resp = change_password(&app, &access, "secret", "new secret").await;
    assert_eq!(parts(resp, &[]).await, (204, Value::Null, vec![]));
    for token in [&access, &other] {
        assert_eq!(me_status(&app, token).await, 401);
    }
    for token in [&refresh_token, &other_refresh] {
        assert_eq!(
            parts(refresh(&app, token).await, &OAUTH_HEADERS).await,
            oauth_error("invalid_grant", INVALID_GRANT)
        );
    }
    assert_eq!(app.login("johndoe", "secret").await.status(), 401);
    let (fresh, _) = login_pair(&app, "johndoe", "new secret").await;
    assert_eq!(me_status(&app, &fresh).await, 200);
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_and_counts_as_a_failed_login() {
    let app = spawn_app_with(|s| s.max_failed_logins_per_account = 2).await;
    let (access, _) = login_pair(&app, "johndoe", "secret").await;
    for _ in 0..2 {
        let resp = change_password(&app, &access, "wrong", "new secret").await;
        assert_eq!(
            parts(resp, &[]).await,
            (400, json!({"detail": "Incorrect password"}), vec![])
        );
    }
    let resp = change_password(&app, &access, "secret", "new secret").await;
    assert_eq!(resp.status(), 429, "the account's limit counts them");
    assert_eq!(app.login("johndoe", "secret").await.status(), 429);
    assert_eq!(me_status(&app, &access).await, 200, "nothing was changed");
    let resp = change_password(&app, &access, "", "x").await;
    assert_eq!(resp.status(), 422);
}

#[tokio::test]
async fn a_disable_or_a_revoke_ends_every_session_and_refresh_token() {
    let app = spawn_app().await;
    let db = app.settings.database_url.clone();
    for command in [
        vec!["user", "revoke", "johndoe"],
        vec!["user", "disable", "johndoe"],
    ] {
        gatehouse_cli(&db, &["user", "enable", "johndoe"], "");
        let (access, refresh_token) = login_pair(&app, "johndoe", "secret").await;
        let out = gatehouse_cli(&db, &command, "");
        assert!(out.status.success(), "{command:?}");
        assert_eq!(
            refresh(&app, &refresh_token).await.status(),
            400,
            "{command:?}"
        );
        assert_eq!(me_status(&app, &access).await, 401, "{command:?}");
    }
    // The admin API's disable too (by another admin: the last one keeps their account).
    gatehouse_cli(&db, &["user", "enable", "johndoe"], "");
    gatehouse_cli(
        &db,
        &["user", "add", "root", "--scopes", "admin"],
        "root-pass-phrase\n",
    );
    let (access, refresh_token) = login_pair(&app, "johndoe", "secret").await;
    let (admin, _) = login_pair(&app, "root", "root-pass-phrase").await;
    let resp = send(
        &app,
        reqwest::Method::PATCH,
        "/admin/users/johndoe",
        &admin,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(refresh(&app, &refresh_token).await.status(), 400);
    assert_eq!(me_status(&app, &access).await, 401);
}
