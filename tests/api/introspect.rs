//! `POST /introspect` (RFC 7662): who may ask, what an active token looks like, and that
//! a revocation shows at once.

use gatehouse::{
    auth::token::JwtAlgorithm,
    db::{
        self,
        user::{NewUser, UserChanges},
    },
};
use serde_json::{json, Value};

use crate::helpers::{
    gatehouse_cli, parts, spawn_app, spawn_app_with, ServingBinary, TestApp, TestDb,
};

/// `POST /introspect` with `token` (when given) as `caller`.
async fn introspect(
    app: &TestApp,
    caller: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, Value, Vec<Option<String>>) {
    let mut req = app.client.post(app.url("/introspect")).form(fields);
    if let Some(caller) = caller {
        req = req.bearer_auth(caller);
    }
    parts(
        req.send().await.unwrap(),
        &["cache-control", "www-authenticate"],
    )
    .await
}

/// A token of johndoe (who holds every scope) with the `introspect` scope only.
async fn introspector(app: &TestApp) -> String {
    let body = app
        .login_with_scope("johndoe", "secret", "introspect")
        .await;
    body["access_token"].as_str().unwrap().to_owned()
}

async fn add_carol(app: &TestApp) {
    // The seed hash of "secret".
    let hash = db::user::find(&app.db, "johndoe")
        .await
        .unwrap()
        .unwrap()
        .hashed_password;
    db::user::create(
        &app.db,
        NewUser {
            username: "carol".into(),
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
}

fn inactive() -> (u16, Value, Vec<Option<String>>) {
    (
        200,
        json!({"active": false}),
        vec![Some("no-store".into()), None],
    )
}

#[tokio::test]
async fn introspection_needs_a_bearer_token_with_the_introspect_scope() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    let (status, body, headers) = introspect(&app, None, &[("token", &token)]).await;
    assert_eq!(
        (status, body, headers[1].clone()),
        (
            401,
            json!({"detail": "Not authenticated"}),
            Some("Bearer".into())
        )
    );
    let me_only = app.login_with_scope("johndoe", "secret", "me").await;
    let me_only = me_only["access_token"].as_str().unwrap();
    let (status, body, headers) = introspect(&app, Some(me_only), &[("token", &token)]).await;
    assert_eq!(
        (status, body, headers[1].clone()),
        (
            401,
            json!({"detail": "Not enough permissions"}),
            Some("Bearer scope=\"introspect\", error=\"insufficient_scope\"".into())
        )
    );
}

#[tokio::test]
async fn an_active_token_is_described_and_any_other_is_only_inactive() {
    let app = spawn_app().await;
    let caller = introspector(&app).await;
    let login = app.login_with_scope("johndoe", "secret", "me items").await;
    let token = login["access_token"].as_str().unwrap();
    let (status, body, headers) = introspect(
        &app,
        Some(&caller),
        &[("token", token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!((status, &headers[0]), (200, &Some("no-store".to_owned())));
    let claims = crate::helpers::segment(token, 1);
    assert_eq!(
        body,
        json!({"active": true, "scope": "me items", "username": "johndoe",
               "token_type": "bearer", "exp": claims["exp"], "iat": claims["iat"],
               "sub": "johndoe", "sid": claims["sid"]})
    );
    for other in ["garbage", "a.b.c", &format!("{token}x")] {
        assert_eq!(
            introspect(&app, Some(&caller), &[("token", other)]).await,
            inactive()
        );
    }
    // A disabled user's token: alice is seeded disabled.
    let alice = app.token("alice", "secret2").await;
    assert_eq!(
        introspect(&app, Some(&caller), &[("token", &alice)]).await,
        inactive()
    );
}

#[tokio::test]
async fn a_missing_or_empty_token_is_a_422() {
    let app = spawn_app().await;
    let caller = introspector(&app).await;
    for fields in [&[][..], &[("token", "")][..]] {
        let (status, body, _) = introspect(&app, Some(&caller), fields).await;
        assert_eq!(
            (status, body),
            (
                422,
                json!({"detail": [{"type": "missing", "loc": ["body", "token"],
                                   "msg": "Field required", "input": null}]})
            )
        );
    }
}

#[tokio::test]
async fn revocations_show_at_once() {
    let app = spawn_app().await;
    let caller = introspector(&app).await;
    add_carol(&app).await;
    let active = |body: &Value| body["active"].as_bool().unwrap();

    // Disabled, then enabled again: the old token stays revoked.
    let token = app.token("carol", "secret").await;
    assert!(active(
        &introspect(&app, Some(&caller), &[("token", &token)])
            .await
            .1
    ));
    db::user::set_disabled(&app.db, "carol", true)
        .await
        .unwrap();
    assert_eq!(
        introspect(&app, Some(&caller), &[("token", &token)]).await,
        inactive()
    );
    db::user::set_disabled(&app.db, "carol", false)
        .await
        .unwrap();
    assert_eq!(
        introspect(&app, Some(&caller), &[("token", &token)]).await,
        inactive()
    );

    // Tokens revoked (a password change or `user revoke` bumps token_version).
    let token = app.token("carol", "secret").await;
    db::user::revoke_tokens(&app.db, "carol").await.unwrap();
    assert_eq!(
        introspect(&app, Some(&caller), &[("token", &token)]).await,
        inactive()
    );

    // A scope taken away: the token stays active with what is left.
    let token = app.token("carol", "secret").await;
    let changes = UserChanges {
        scopes: Some("me".into()),
        ..Default::default()
    };
    db::user::change(&app.db, "carol", changes).await.unwrap();
    let body = introspect(&app, Some(&caller), &[("token", &token)])
        .await
        .1;
    assert_eq!((active(&body), &body["scope"]), (true, &json!("me")));

    // Deleted, even if re-created under the same name.
    db::user::delete(&app.db, "carol").await.unwrap();
    assert_eq!(
        introspect(&app, Some(&caller), &[("token", &token)]).await,
        inactive()
    );
    add_carol(&app).await;
    assert_eq!(
        introspect(&app, Some(&caller), &[("token", &token)]).await,
        inactive()
    );
}

#[tokio::test]
async fn a_revoked_session_is_inactive_at_once_whichever_token_revoked_it() {
    let app = spawn_app().await;
    let caller = introspector(&app).await;
    for revoked in ["access_token", "refresh_token"] {
        let login = app.login_with_scope("johndoe", "secret", "me").await;
        let access = login["access_token"].as_str().unwrap();
        let body = introspect(&app, Some(&caller), &[("token", access)])
            .await
            .1;
        assert_eq!(body["active"], true);
        let resp = app
            .post_form("/revoke", &[("token", login[revoked].as_str().unwrap())])
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            introspect(&app, Some(&caller), &[("token", access)]).await,
            inactive(),
            "after revoking the {revoked}"
        );
        // A refresh token is not something other services introspect.
        let refresh = login["refresh_token"].as_str().unwrap();
        assert_eq!(
            introspect(&app, Some(&caller), &[("token", refresh)]).await,
            inactive()
        );
    }
}

#[tokio::test]
async fn eddsa_tokens_are_introspected_too() {
    let app = spawn_app_with(|s| {
        s.jwt_algorithm = JwtAlgorithm::EdDsa;
        s.jwt_issuer = Some("https://auth.example.com".into());
        s.jwt_audience = Some("reports".into());
    })
    .await;
    let caller = introspector(&app).await;
    let token = app.token("johndoe", "secret").await;
    let body = introspect(&app, Some(&caller), &[("token", &token)])
        .await
        .1;
    assert_eq!(body["active"], true);
    assert_eq!(body["iss"], "https://auth.example.com");
    assert_eq!(body["aud"], "reports");
}

#[tokio::test]
async fn two_postgres_replicas_see_a_revocation_made_through_either_or_the_cli_at_once() {
    let db = TestDb::postgres().await;
    let a = ServingBinary::start(&db.url, &["serve", "--demo"], &[]).await;
    let b = ServingBinary::start(&db.url, &["serve", "--demo"], &[]).await;
    // A service account of its own, so that revoking johndoe leaves the caller alone.
    let cli = |args: &[&str], stdin: &str| {
        let out = gatehouse_cli(&db.url, args, stdin);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cli(
        &["user", "add", "svc", "--scopes", "introspect"],
        "svc-password\n",
    );
    let client = reqwest::Client::new();
    let login = |server: &ServingBinary, user: &'static str, pw: &'static str| {
        let request = client
            .post(server.at("/token"))
            .form(&[("username", user), ("password", pw)]);
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let caller = login(&b, "svc", "svc-password").await;
    let active_on = |server: &ServingBinary, token: &str| {
        let request = client
            .post(server.at("/introspect"))
            .bearer_auth(&caller)
            .form(&[("token", token)]);
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["active"].as_bool().unwrap()
        }
    };
    // POST /revoke on replica a.
    let token = login(&a, "johndoe", "secret").await;
    assert!(active_on(&a, &token).await && active_on(&b, &token).await);
    let resp = client
        .post(a.at("/revoke"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!active_on(&a, &token).await, "revoke: replica a");
    assert!(!active_on(&b, &token).await, "revoke: replica b");
    // The CLI, as an operator runs it next to the replicas.
    for command in ["revoke", "disable"] {
        let token = login(&a, "johndoe", "secret").await;
        assert!(active_on(&a, &token).await && active_on(&b, &token).await);
        cli(&["user", command, "johndoe"], "");
        assert!(!active_on(&a, &token).await, "{command}: replica a");
        assert!(!active_on(&b, &token).await, "{command}: replica b");
    }
}
