//! The admin API (scope `admin`): `/admin/users/` and `/admin/users/{username}`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{parts, spawn_app, TestApp};

/// A token of the demo's johndoe, who holds `admin`, with exactly `scope`.
async fn token_with(app: &TestApp, scope: &str) -> String {
    app.login_with_scope("johndoe", "secret", scope).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, Vec<Option<String>>) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    parts(req.send().await.unwrap(), &["www-authenticate"]).await
}

/// Creates `username` (password `<username>-pass-phrase`) holding `admin` through the API, with
/// `admin`'s token; the new admin's token with scope `admin`.
async fn admin_named(app: &TestApp, admin: &str, username: &str) -> String {
    let password = format!("{username}-pass-phrase");
    let body = json!({"username": username, "password": password, "scopes": ["me", "admin"]});
    let (status, _, _) = send(app, Method::POST, "/admin/users/", admin, Some(body)).await;
    assert_eq!(status, 201, "{username} created");
    app.login_with_scope(username, &password, "admin").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn admin_creates_reads_lists_changes_and_deletes_a_user() {
    let app = spawn_app().await;
    let admin = token_with(&app, "admin").await;

    let (status, body, _) = send(
        &app,
        Method::POST,
        "/admin/users/",
        &admin,
        Some(json!({"username": "carol", "password": "correct horse",
                    "email": "carol@example.com"})),
    )
    .await;
    assert_eq!(status, 201);
    let carol = json!({"username": "carol", "email": "carol@example.com", "full_name": null,
                       "disabled": false, "scopes": ["me", "items"], "totp_enabled": false, "email_verified": false});
    assert_eq!(body, carol);

    assert_eq!(
        send(&app, Method::GET, "/admin/users/carol", &admin, None)
            .await
            .1,
        carol
    );
    let (status, list, _) = send(&app, Method::GET, "/admin/users/", &admin, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "carol", "johndoe"]);
    assert_eq!(
        list[2]["scopes"],
        json!(["me", "items", "admin", "introspect"])
    );

    // carol logs in and reads her items; then the admin takes `items` away.
    let resp = app
        .post_form(
            "/token",
            &[("username", "carol"), ("password", "correct horse")],
        )
        .await;
    let carols = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let items = |token: String| {
        let app = &app;
        async move {
            app.get("/users/me/items/", Some(&format!("Bearer {token}")))
                .await
                .status()
        }
    };
    assert_eq!(items(carols.clone()).await, 200);
    let (status, body, _) = send(
        &app,
        Method::PATCH,
        "/admin/users/carol",
        &admin,
        Some(json!({"scopes": ["me"], "full_name": "Carol C", "email": null})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"username": "carol", "email": null, "full_name": "Carol C",
               "disabled": false, "scopes": ["me"], "totp_enabled": false, "email_verified": false})
    );
    assert_eq!(
        items(carols.clone()).await,
        401,
        "scope removal is immediate"
    );
    assert_eq!(app.me(&carols).await.status(), 200, "and logs no one out");

    // A new password revokes her tokens; the new password logs in.
    let (status, _, _) = send(
        &app,
        Method::PATCH,
        "/admin/users/carol",
        &admin,
        Some(json!({"password": "battery staple"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.me(&carols).await.status(), 401);
    let carols = app.token("carol", "battery staple").await;

    // Disabling: her token is refused at once (revoked), a new one answers 400.
    let (status, body, _) = send(
        &app,
        Method::PATCH,
        "/admin/users/carol",
        &admin,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!((status, &body["disabled"]), (200, &json!(true)));
    assert_eq!(app.me(&carols).await.status(), 401);
    let carols = app.token("carol", "battery staple").await;
    assert_eq!(app.me(&carols).await.status(), 400);

    let resp = app
        .client
        .delete(app.url("/admin/users/carol"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.text().await.unwrap(), "");
    assert_eq!(
        app.me(&carols).await.status(),
        401,
        "deleted: token refused"
    );
    assert_eq!(
        send(&app, Method::GET, "/admin/users/carol", &admin, None).await,
        (404, json!({"detail": "User not found"}), vec![None])
    );
}

#[tokio::test]
async fn admin_operations_need_the_admin_scope_held_now() {
    let app = spawn_app().await;
    let not_admin = token_with(&app, "me items").await;
    let challenge = (
        401,
        json!({"detail": "Not enough permissions"}),
        vec![Some(
            r#"Bearer scope="admin", error="insufficient_scope""#.to_owned(),
        )],
    );
    for (method, path) in [
        (Method::GET, "/admin/users/"),
        (Method::POST, "/admin/users/"),
        (Method::GET, "/admin/users/alice"),
        (Method::PATCH, "/admin/users/alice"),
        (Method::DELETE, "/admin/users/alice"),
    ] {
        assert_eq!(
            send(&app, method.clone(), path, &not_admin, Some(json!({}))).await,
            challenge,
            "{method} {path}"
        );
    }
    assert_eq!(
        parts(app.get("/admin/users/", None).await, &["www-authenticate"]).await,
        (
            401,
            json!({"detail": "Not authenticated"}),
            vec![Some("Bearer".to_owned())]
        )
    );

    // An admin whose `admin` scope is taken away (here, by another admin) loses it at once.
    let admin = token_with(&app, "admin").await;
    let root = admin_named(&app, &admin, "root").await;
    let (status, _, _) = send(
        &app,
        Method::PATCH,
        "/admin/users/johndoe",
        &root,
        Some(json!({"scopes": ["me", "items"]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        send(&app, Method::GET, "/admin/users/", &admin, None).await,
        challenge
    );
}

#[tokio::test]
async fn admin_api_answers_409_404_and_fastapi_shaped_422s() {
    let app = spawn_app().await;
    let admin = token_with(&app, "admin").await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move { send(app, Method::POST, "/admin/users/", admin, Some(body)).await }
    };

    assert_eq!(
        create(json!({"username": "alice", "password": "a long pass-phrase"})).await,
        (
            409,
            json!({"detail": "Username already registered"}),
            vec![None]
        )
    );
    assert_eq!(
        send(
            &app,
            Method::PATCH,
            "/admin/users/nobody",
            &admin,
            Some(json!({"disabled": true}))
        )
        .await,
        (404, json!({"detail": "User not found"}), vec![None])
    );
    assert_eq!(
        send(&app, Method::DELETE, "/admin/users/nobody", &admin, None).await,
        (404, json!({"detail": "User not found"}), vec![None])
    );

    let (status, body, _) = create(json!({"email": 5})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [
            {"type": "missing", "loc": ["body", "username"], "msg": "Field required", "input": null},
            {"type": "missing", "loc": ["body", "password"], "msg": "Field required", "input": null},
            {"type": "string_type", "loc": ["body", "email"], "msg": "Input should be a valid string", "input": 5},
        ]})
    );
    let (status, body, _) = create(json!({"username": "dave", "password": "pw",
                                          "scopes": ["me", "root"]}))
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"][0],
        json!({"type": "enum", "loc": ["body", "scopes", "1"],
               "msg": "Input should be 'me', 'items', 'admin' or 'introspect'", "input": "root",
               "ctx": {"expected": "'me', 'items', 'admin' or 'introspect'"}})
    );
    // `null` only where the schema says nullable: `email` may be cleared, not `password`.
    let (status, body, _) = send(
        &app,
        Method::PATCH,
        "/admin/users/alice",
        &admin,
        Some(json!({"email": null, "password": null, "disabled": null})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"],
        json!([
            {"type": "bool_type", "loc": ["body", "disabled"], "msg": "Input should be a valid boolean", "input": null},
            {"type": "string_type", "loc": ["body", "password"], "msg": "Input should be a valid string", "input": "**********"},
        ])
    );

    let (status, body, _) =
        create(json!({"username": "u".repeat(129), "password": "p".repeat(1025)})).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "string_too_long");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "username"]));
    assert_eq!(body["detail"][1]["type"], "string_too_long");
    assert_eq!(
        body["detail"][1]["input"], "**********",
        "a password is never echoed"
    );
    // The CLI's rules: no control characters (the schema's pattern says so too)...
    let pattern = r"^[^\x00-\x1F\x7F-\x9F]*$";
    let (status, body, _) = create(json!({"username": "a\u{7}b", "password": "pw"})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"],
        json!([{"type": "string_pattern_mismatch", "loc": ["body", "username"],
                "msg": format!("String should match pattern '{pattern}'"),
                "input": "a\u{7}b", "ctx": {"pattern": pattern}}])
    );
    // ...and passwords of at most 1024 bytes, which the schema (characters) cannot say:
    // the password policy answers, as it does the CLI.
    let (status, body, _) = create(json!({"username": "eve", "password": "é".repeat(513)})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"],
        json!([{"type": "string_too_long", "loc": ["body", "password"],
                "msg": "String should have at most 1024 bytes",
                "input": "**********", "ctx": {"max_length": 1024}}])
    );

    let resp = app
        .client
        .post(app.url("/admin/users/"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body, _) = parts(resp, &[]).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "json_invalid");
    let (status, body, _) = create(json!(["a list"])).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "model_attributes_type");

    let resp = app
        .client
        .post(app.url("/admin/users/"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"username":"big","password":"{}"}}"#,
            "x".repeat(17 * 1024)
        ))
        .send()
        .await
        .unwrap();
    let (status, body, _) = parts(resp, &[]).await;
    assert_eq!(
        (status, body),
        (413, json!({"detail": "Request body too large"}))
    );
}

const LAST_ADMIN: &str = "The last enabled user holding the admin scope cannot lose it: grant \
                          admin to another user first";

#[tokio::test]
async fn the_last_enabled_admin_cannot_demote_disable_or_delete_themselves() {
    let app = spawn_app().await;
    // johndoe is the only enabled admin: the demo's alice holds `admin` but is disabled.
    let admin = token_with(&app, "admin").await;
    let refused = (409, json!({ "detail": LAST_ADMIN }), vec![None]);
    for (method, body) in [
        (Method::PATCH, Some(json!({"scopes": ["me", "items"]}))),
        (Method::PATCH, Some(json!({"scopes": []}))),
        (Method::PATCH, Some(json!({"disabled": true}))),
        (
            Method::PATCH,
            Some(json!({"disabled": true, "scopes": ["admin"], "email": "x@example.com"})),
        ),
        (Method::DELETE, None),
    ] {
        assert_eq!(
            send(
                &app,
                method.clone(),
                "/admin/users/johndoe",
                &admin,
                body.clone()
            )
            .await,
            refused,
            "{method} {body:?}"
        );
    }
    // Nothing of a refused change was made, and the token still works.
    let johndoe = json!({"username": "johndoe", "email": "johndoe@example.com",
                         "full_name": "John Doe", "disabled": false,
                         "scopes": ["me", "items", "admin", "introspect"],
                         "totp_enabled": false, "email_verified": true});
    assert_eq!(
        send(&app, Method::GET, "/admin/users/johndoe", &admin, None).await,
        (200, johndoe.clone(), vec![None])
    );
    // A change that keeps `admin` is no concern of the rule.
    let (status, body, _) = send(
        &app,
        Method::PATCH,
        "/admin/users/johndoe",
        &admin,
        Some(json!({"scopes": ["admin", "me"], "full_name": "J. Doe"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["scopes"], json!(["me", "admin"]));

    // With a second enabled admin, johndoe may step down, and then root is the last one.
    let root = admin_named(&app, &admin, "root").await;
    let (status, body, _) = send(
        &app,
        Method::PATCH,
        "/admin/users/johndoe",
        &admin,
        Some(json!({"scopes": ["me"]})),
    )
    .await;
    assert_eq!((status, &body["scopes"]), (200, &json!(["me"])));
    assert_eq!(
        send(&app, Method::DELETE, "/admin/users/root", &root, None).await,
        refused
    );
    // Enabling alice, who holds `admin`, makes her an admin who counts.
    let (status, _, _) = send(
        &app,
        Method::PATCH,
        "/admin/users/alice",
        &root,
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        send(&app, Method::DELETE, "/admin/users/root", &root, None).await,
        (204, Value::Null, vec![None])
    );
}

#[tokio::test]
async fn the_cli_may_take_admin_from_the_last_admin() {
    let app = spawn_app().await;
    let db = app.settings.database_url.clone();
    for args in [
        &["user", "scopes", "johndoe", "--set", "me"][..],
        &["user", "disable", "johndoe"],
    ] {
        let out = crate::helpers::gatehouse_cli(&db, args, "");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let users = gatehouse::db::user::list(&app.db).await.unwrap();
    let johndoe = users.iter().find(|u| u.username == "johndoe").unwrap();
    assert_eq!((johndoe.disabled, johndoe.scopes.as_str()), (true, "me"));
}

/// How many enabled users hold `admin`, from the database.
async fn enabled_admins(app: &TestApp) -> usize {
    gatehouse::db::user::list(&app.db)
        .await
        .unwrap()
        .iter()
        .filter(|u| !u.disabled && u.scopes.split(' ').any(|s| s == "admin"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_taking_admin_from_each_other_at_once_leave_one() {
    let app = spawn_app().await;
    let johndoe = token_with(&app, "admin").await;
    admin_named(&app, &johndoe, "carol").await;
    for round in 0..24 {
        // Both hold `admin` again, enabled, with fresh tokens.
        for name in ["johndoe", "carol"] {
            let changes = gatehouse::db::user::UserChanges {
                disabled: Some(false),
                scopes: Some("me admin".to_owned()),
                ..Default::default()
            };
            assert!(gatehouse::db::user::change(&app.db, name, changes)
                .await
                .unwrap());
        }
        let password = |name| {
            if name == "johndoe" {
                "secret"
            } else {
                "carol-pass-phrase"
            }
        };
        let token = |name: &'static str| {
            let app = &app;
            async move {
                app.login_with_scope(name, password(name), "admin").await["access_token"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        };
        let (johndoes, carols) = (token("johndoe").await, token("carol").await);
        // Every other round by a disable, which also revokes the target's tokens.
        let body = if round % 2 == 0 {
            json!({"scopes": ["me"]})
        } else {
            json!({"disabled": true})
        };
        let (one, other) = tokio::join!(
            send(
                &app,
                Method::PATCH,
                "/admin/users/carol",
                &johndoes,
                Some(body.clone())
            ),
            send(
                &app,
                Method::PATCH,
                "/admin/users/johndoe",
                &carols,
                Some(body.clone())
            ),
        );
        let mut statuses = [one.0, other.0];
        statuses.sort_unstable();
        // The second change is refused: by the guard (409), or, when the first was done
        // before its bearer check, as its caller no longer an admin (401).
        assert!(
            statuses == [200, 409] || statuses == [200, 401],
            "round {round} ({body}): {statuses:?}"
        );
        assert_eq!(enabled_admins(&app).await, 1, "round {round} ({body})");
    }
}
