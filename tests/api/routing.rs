//! What happens around the operations: unknown paths, wrong methods, slashes, headers.

use serde_json::json;

use crate::helpers::{parts, spawn_app, spawn_app_with};

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let app = spawn_app().await;
    // `/users` is not here: it is `POST /users/`'s path with the other slash (a 307).
    for path in ["/", "/nope", "/user", "/users/me/items/x", "/token/x"] {
        let resp = app.get(path, None).await;
        assert_eq!(
            parts(resp, &[]).await,
            (404, json!({"detail": "Not Found"}), vec![]),
            "{path}"
        );
    }
}

#[tokio::test]
async fn wrong_method_is_a_json_405_with_allow() {
    let app = spawn_app().await;
    let get_token = app.get("/token", None).await;
    assert_eq!(
        parts(get_token, &["allow"]).await,
        (
            405,
            json!({"detail": "Method Not Allowed"}),
            vec![Some("POST".to_owned())]
        )
    );
    for (method, path, allow) in [
        ("POST", "/users/me/", "GET, PATCH, HEAD"),
        ("DELETE", "/users/me/items/", "GET, HEAD"),
        ("PUT", "/docs", "GET, HEAD"),
    ] {
        let resp = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            parts(resp, &["allow"]).await,
            (
                405,
                json!({"detail": "Method Not Allowed"}),
                vec![Some(allow.to_owned())]
            ),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn other_trailing_slash_redirects_307_to_the_declared_path_keeping_the_query() {
    let app = spawn_app().await;
    for (path, location) in [
        ("/users/me", "/users/me/"),
        (
            "/users/me/items?page=2&x=%20",
            "/users/me/items/?page=2&x=%20",
        ),
        ("/docs/", "/docs"),
    ] {
        let resp = app.get(path, None).await;
        assert_eq!(resp.status(), 307, "{path}");
        assert_eq!(resp.headers()["location"], location);
        assert_eq!(resp.text().await.unwrap(), "");
    }
    let post = app
        .post_form(
            "/token/",
            &[("username", "johndoe"), ("password", "secret")],
        )
        .await;
    assert_eq!(post.status(), 307);
    assert_eq!(post.headers()["location"], "/token");
}

#[tokio::test]
async fn a_following_client_logs_in_through_the_redirect() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let resp = client
        .post(app.url("/token/"))
        .form(&[("username", "johndoe"), ("password", "secret")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "307 keeps method and body");
}

#[tokio::test]
async fn redirects_behind_a_proxy_carry_the_root_path() {
    let app = spawn_app_with(|s| s.root_path = "/auth".into()).await;
    let resp = app.get("/users/me?a=1", None).await;
    assert_eq!(resp.status(), 307);
    assert_eq!(resp.headers()["location"], "/auth/users/me/?a=1");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let responses = vec![
        app.login("johndoe", "secret").await,
        app.login("johndoe", "wrong").await,
        app.get("/nope", None).await,
        app.get("/users/me/", None).await,
        app.get("/docs", None).await,
    ];
    for resp in responses {
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{}", resp.url());
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
}

#[tokio::test]
async fn head_is_answered_for_get_routes() {
    let app = spawn_app().await;
    let resp = app
        .client
        .head(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
