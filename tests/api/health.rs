//! `GET /healthz` and `GET /readyz`. A readiness check against a database that is down is
//! in `faults.rs`, with the proxy that takes PostgreSQL away.

use serde_json::json;

use crate::helpers::{parts, spawn_app};

#[tokio::test]
async fn healthz_answers_ok_while_the_process_is_up() {
    let app = spawn_app().await;
    let (status, body, headers) = parts(app.get("/healthz", None).await, &["content-type"]).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ok"}));
    assert_eq!(
        headers,
        vec![Some("application/json; charset=utf-8".to_owned())]
    );
}

#[tokio::test]
async fn readyz_answers_ok_when_the_database_answers() {
    let app = spawn_app().await;
    let (status, body, headers) = parts(app.get("/readyz", None).await, &["retry-after"]).await;
    assert_eq!(
        (status, body, headers),
        (200, json!({"status": "ok"}), vec![None])
    );
}

#[tokio::test]
async fn health_paths_follow_the_route_guard() {
    let app = spawn_app().await;
    let post = app.client.post(app.url("/readyz")).send().await.unwrap();
    let (status, body, headers) = parts(post, &["allow"]).await;
    assert_eq!(
        (status, body, headers),
        (
            405,
            json!({"detail": "Method Not Allowed"}),
            vec![Some("GET, HEAD".to_owned())]
        )
    );
    let (status, _, headers) = parts(app.get("/healthz/", None).await, &["location"]).await;
    assert_eq!((status, headers), (307, vec![Some("/healthz".to_owned())]));
}
