//! Scopes in gatehouse's default mode (`DEFAULT_SCOPES` unset) and with `DEFAULT_SCOPES`
//! set: what a token is granted, and the live check against the scopes held now.

use gatehouse::{
    accounts::{manage, Scopes},
    db::{self, user::NewUser},
};
use serde_json::{json, Value};

use crate::helpers::{forge, now, parts, segment, spawn_app, spawn_app_with, TestApp, TEST_SECRET};

async fn login_with_scope(app: &TestApp, username: &str, scope: &str) -> Value {
    app.login_with_scope(username, "secret", scope).await
}

async fn get_with(app: &TestApp, path: &str, token: &str) -> (u16, Value, Vec<Option<String>>) {
    parts(
        app.get(path, Some(&format!("Bearer {token}"))).await,
        &["www-authenticate"],
    )
    .await
}

fn not_enough(required: &str) -> (u16, Value, Vec<Option<String>>) {
    (
        401,
        json!({"detail": "Not enough permissions"}),
        vec![Some(format!(
            r#"Bearer scope="{required}", error="insufficient_scope""#
        ))],
    )
}

#[tokio::test]
async fn without_scope_a_login_gets_every_scope_the_user_holds() {
    let app = spawn_app().await;
    let resp = app.login("johndoe", "secret").await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["scope"], "me items admin introspect",
        "--demo users hold all"
    );
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(segment(token, 1)["scope"], "me items admin introspect");

    // An empty `scope`, as generated clients send it, is no scope.
    let body = login_with_scope(&app, "johndoe", "").await;
    assert_eq!(body["scope"], "me items admin introspect");
}

#[tokio::test]
async fn a_token_gets_the_requested_scopes_the_user_holds_and_no_others() {
    let app = spawn_app().await;
    manage::set_scopes(&app.db, "johndoe", Scopes::strict("me").unwrap())
        .await
        .unwrap();
    let body = login_with_scope(&app, "johndoe", "items bogus me admin").await;
    assert_eq!(
        body["scope"], "me",
        "unknown and unheld scopes are left out"
    );
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(segment(token, 1)["scope"], "me");
    assert_eq!(get_with(&app, "/users/me/", token).await.0, 200);
    assert_eq!(
        get_with(&app, "/users/me/items/", token).await,
        not_enough("items me")
    );
}

#[tokio::test]
async fn a_token_without_a_required_scope_gets_401_not_enough_permissions() {
    let app = spawn_app().await;
    let token = login_with_scope(&app, "johndoe", "me").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get_with(&app, "/users/me/", &token).await.0, 200);
    assert_eq!(
        get_with(&app, "/users/me/items/", &token).await,
        not_enough("items me")
    );
    assert_eq!(
        get_with(&app, "/admin/users/", &token).await,
        not_enough("admin")
    );
    // `/status/` requires no scope: any valid token, and its challenges name none.
    let (status, body, _) = get_with(&app, "/status/", &token).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    assert_eq!(
        get_with(&app, "/status/", "forged").await,
        (
            401,
            json!({"detail": "Could not validate credentials"}),
            vec![Some(r#"Bearer error="invalid_token""#.to_owned())]
        )
    );
    assert_eq!(
        get_with(&app, "/users/me/items/", "forged").await.2,
        vec![Some(
            r#"Bearer scope="items me", error="invalid_token""#.to_owned()
        )]
    );
}

#[tokio::test]
async fn a_scope_taken_away_stops_working_at_the_next_request_without_a_new_login() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    assert_eq!(get_with(&app, "/users/me/items/", &token).await.0, 200);

    manage::set_scopes(&app.db, "johndoe", Scopes::strict("me").unwrap())
        .await
        .unwrap();
    assert_eq!(
        get_with(&app, "/users/me/items/", &token).await,
        not_enough("items me")
    );
    assert_eq!(
        get_with(&app, "/users/me/", &token).await.0,
        200,
        "the user is not logged out"
    );

    // Given back, the same token works again: it still carries the scope.
    manage::set_scopes(&app.db, "johndoe", Scopes::strict("me items").unwrap())
        .await
        .unwrap();
    assert_eq!(get_with(&app, "/users/me/items/", &token).await.0, 200);
}

#[tokio::test]
async fn the_scope_check_comes_before_the_inactive_user_check_as_in_fastapi() {
    let app = spawn_app().await;
    // The demo's disabled alice (password "secret2") may log in, as in the tutorial.
    let alice = |scope: &'static str| {
        let app = &app;
        async move {
            app.login_with_scope("alice", "secret2", scope).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let token = alice("items").await;
    assert_eq!(get_with(&app, "/users/me/", &token).await, not_enough("me"));
    let token = alice("me").await;
    assert_eq!(
        get_with(&app, "/users/me/", &token).await,
        (400, json!({"detail": "Inactive user"}), vec![None])
    );
}

#[tokio::test]
async fn default_scopes_apply_to_logins_and_to_tokens_without_a_scope_claim() {
    let app = spawn_app_with(|s| s.default_scopes = Some(Scopes::strict("me").unwrap())).await;
    let resp = app.login("johndoe", "secret").await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "me");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(get_with(&app, "/users/me/", token).await.0, 200);
    assert_eq!(
        get_with(&app, "/users/me/items/", token).await,
        not_enough("items me")
    );
    // A token issued before gatehouse had scopes (no `scope` claim) gets what a login
    // without `scope` gets.
    let uid = db::user::find(&app.db, "johndoe")
        .await
        .unwrap()
        .unwrap()
        .id;
    let old = forge(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &json!({"sub": "johndoe", "uid": uid, "exp": now() + 600, "iat": now(), "ver": 0}),
        TEST_SECRET,
    );
    assert_eq!(get_with(&app, "/users/me/", &old).await.0, 200);
    assert_eq!(
        get_with(&app, "/users/me/items/", &old).await,
        not_enough("items me")
    );
}

#[tokio::test]
async fn users_created_without_a_choice_hold_me_and_items() {
    let app = spawn_app().await;
    db::user::create(
        &app.db,
        NewUser {
            username: "plain".into(),
            email: None,
            full_name: None,
            hashed_password: gatehouse::auth::password::hash_password("secret").unwrap(),
            disabled: false,
            username_skeleton: None,
            scopes: None,
        },
    )
    .await
    .unwrap();
    let body = login_with_scope(&app, "plain", "me items admin").await;
    assert_eq!(body["scope"], "me items");
}

#[tokio::test]
async fn an_unknown_scope_in_default_scopes_is_refused_at_start_naming_it() {
    let db = crate::helpers::TestDb::new().await;
    let log = crate::helpers::ServingBinary::start_with_env(
        &["serve"],
        &[
            ("DATABASE_URL", db.url.as_str()),
            ("SECRET_KEY", TEST_SECRET),
            ("DEFAULT_SCOPES", "me sudo"),
        ],
    )
    .await
    .err()
    .expect("refused");
    assert!(
        log.contains("unknown scope \"sudo\"; the scopes are: me items admin introspect"),
        "{log}"
    );
}
