//! `GET /.well-known/oauth-authorization-server` (RFC 8414): the URLs come from
//! `JWT_ISSUER`, else from the request's own origin and `ROOT_PATH`.

use serde_json::{json, Value};

use crate::helpers::{parts, spawn_app, spawn_app_with, TestApp};

const PATH: &str = "/.well-known/oauth-authorization-server";

fn metadata_at(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint": format!("{issuer}/introspect"),
        "introspection_endpoint_auth_methods_supported": ["Bearer"],
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "scopes_supported": ["me", "items", "admin", "introspect"],
        "response_types_supported": ["none"],
        "grant_types_supported": ["password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "service_documentation": format!("{issuer}/docs"),
    })
}

async fn metadata(app: &TestApp, headers: &[(&str, &str)]) -> Value {
    let mut req = app.client.get(app.url(PATH));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let (status, body, content_type) = parts(req.send().await.unwrap(), &["content-type"]).await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        [Some("application/json; charset=utf-8".to_owned())]
    );
    body
}

#[tokio::test]
async fn metadata_urls_are_the_requests_own_origin_by_default() {
    let app = spawn_app().await;
    assert_eq!(metadata(&app, &[]).await, metadata_at(&app.address));
    assert_eq!(
        metadata(&app, &[("host", "gate.example:8443")]).await,
        metadata_at("http://gate.example:8443")
    );
}

#[tokio::test]
async fn metadata_urls_carry_the_root_path() {
    let app = spawn_app_with(|s| s.root_path = "/auth".to_owned()).await;
    assert_eq!(
        metadata(&app, &[("host", "gate.example")]).await,
        metadata_at("http://gate.example/auth")
    );
}

#[tokio::test]
async fn metadata_urls_start_with_jwt_issuer_when_set() {
    let app = spawn_app_with(|s| {
        s.jwt_issuer = Some("https://auth.example.com/".to_owned());
        s.root_path = "/ignored".to_owned();
    })
    .await;
    assert_eq!(
        metadata(&app, &[("host", "elsewhere.example")]).await,
        metadata_at("https://auth.example.com")
    );
}

#[tokio::test]
async fn forwarded_proto_and_host_count_only_from_a_trusted_proxy() {
    let forwarded = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "auth.example.com"),
        ("host", "10.0.0.5:8000"),
    ];
    let direct = spawn_app().await;
    assert_eq!(
        metadata(&direct, &forwarded).await,
        metadata_at("http://10.0.0.5:8000")
    );
    let proxied =
        spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    assert_eq!(
        metadata(&proxied, &forwarded).await,
        metadata_at("https://auth.example.com")
    );
}

#[tokio::test]
async fn a_host_header_that_is_not_a_host_gives_way_to_the_listening_address() {
    let app = spawn_app().await;
    let answer = app
        .raw_exchange(
            format!("GET {PATH} HTTP/1.1\r\nHost: evil.example/\"x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body, metadata_at(&app.address));
}

#[tokio::test]
async fn without_refresh_tokens_the_only_grant_is_password() {
    let app = spawn_app_with(|s| s.refresh_token_expire_days = 0).await;
    let mut expected = metadata_at(&app.address);
    expected["grant_types_supported"] = json!(["password"]);
    assert_eq!(metadata(&app, &[]).await, expected);
}
