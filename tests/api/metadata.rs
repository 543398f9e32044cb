//! `GET /.well-known/oauth-authorization-server` (RFC 8414): the URLs come from
//! `PUBLIC_URL` or `JWT_ISSUER`, else from the request's own origin and `ROOT_PATH`, and
//! then the answer is not to be cached.

use serde_json::{json, Value};

use crate::helpers::{parts, spawn_app, spawn_app_with, ServingBinary, TestApp, TestDb};

const PATH: &str = "/.well-known/oauth-authorization-server";

fn metadata_at(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint": format!("{issuer}/introspect"),
        "introspection_endpoint_auth_methods_supported": ["Bearer"],
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "scopes_supported": ["me", "items", "admin", "introspect"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
        // HS256 signs no id tokens: `openid` is refused.
        "id_token_signing_alg_values_supported": [],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr",
                             "at_hash", "azp", "name", "preferred_username", "email", "email_verified"],
        "prompt_values_supported": ["none", "login", "consent"],
        "service_documentation": format!("{issuer}/docs"),
    })
}

/// `Cache-Control` and `Vary` of an answer built from the request's origin, by an app
/// without and with `TRUSTED_PROXIES`.
const FROM_REQUEST: [Option<&str>; 2] = [Some("no-store"), Some("Host")];
const FROM_REQUEST_BEHIND_PROXIES: [Option<&str>; 2] = [
    Some("no-store"),
    Some("Host, X-Forwarded-Host, X-Forwarded-Proto"),
];
/// ...and of one whose URLs `PUBLIC_URL` or `JWT_ISSUER` pins.
const PINNED: [Option<&str>; 2] = [Some("public, max-age=3600"), None];

/// The metadata with `headers` sent, after checking that it comes with `caching`
/// (`Cache-Control` and `Vary`).
async fn metadata(app: &TestApp, headers: &[(&str, &str)], caching: [Option<&str>; 2]) -> Value {
    let mut req = app.client.get(app.url(PATH));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let (status, body, values) = parts(
        req.send().await.unwrap(),
        &["content-type", "cache-control", "vary"],
    )
    .await;
    assert_eq!(status, 200);
    let values: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
    assert_eq!(
        values,
        [
            Some("application/json; charset=utf-8"),
            caching[0],
            caching[1]
        ],
        "{headers:?}"
    );
    body
}

#[tokio::test]
async fn metadata_urls_are_the_requests_own_origin_by_default() {
    let app = spawn_app().await;
    assert_eq!(
        metadata(&app, &[], FROM_REQUEST).await,
        metadata_at(&app.address)
    );
    assert_eq!(
        metadata(&app, &[("host", "gate.example:8443")], FROM_REQUEST).await,
        metadata_at("http://gate.example:8443")
    );
}

#[tokio::test]
async fn metadata_urls_carry_the_root_path() {
    let app = spawn_app_with(|s| s.root_path = "/auth".to_owned()).await;
    assert_eq!(
        metadata(&app, &[("host", "gate.example")], FROM_REQUEST).await,
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
        metadata(&app, &[("host", "elsewhere.example")], PINNED).await,
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
        metadata(&direct, &forwarded, FROM_REQUEST).await,
        metadata_at("http://10.0.0.5:8000")
    );
    let proxied =
        spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    assert_eq!(
        metadata(&proxied, &forwarded, FROM_REQUEST_BEHIND_PROXIES).await,
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
async fn without_refresh_tokens_there_is_no_refresh_grant() {
    let app = spawn_app_with(|s| s.refresh_token_expire_days = 0).await;
    let mut expected = metadata_at(&app.address);
    expected["grant_types_supported"] = json!(["authorization_code", "password"]);
    assert_eq!(metadata(&app, &[], FROM_REQUEST).await, expected);
}

#[tokio::test]
async fn of_forwarded_host_and_proto_the_right_most_entry_counts() {
    let proxied =
        spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    // What a client wrote comes first; the trusted proxy appends what it saw.
    let one_line = [
        ("x-forwarded-proto", "http, https"),
        ("x-forwarded-host", "evil.example, auth.example.com"),
        ("host", "10.0.0.5:8000"),
    ];
    assert_eq!(
        metadata(&proxied, &one_line, FROM_REQUEST_BEHIND_PROXIES).await,
        metadata_at("https://auth.example.com")
    );
    let mut req = proxied.client.get(proxied.url(PATH));
    for (name, value) in [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-host", "auth.example.com:8443"),
    ] {
        req = req.header(name, value);
    }
    let (status, body, _) = parts(req.send().await.unwrap(), &[]).await;
    assert_eq!(
        (status, body),
        (200, metadata_at("http://auth.example.com:8443"))
    );
}

#[tokio::test]
async fn public_url_pins_every_url_and_the_host_header_is_ignored() {
    let app = spawn_app_with(|s| {
        s.public_url =
            Some(gatehouse::config::PublicUrl::parse("https://example.com/auth/").unwrap());
        s.root_path = "/ignored".to_owned();
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for headers in [
        &[][..],
        &[("host", "evil.example")],
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "http"),
        ],
    ] {
        assert_eq!(
            metadata(&app, headers, PINNED).await,
            metadata_at("https://example.com/auth")
        );
    }
}

#[tokio::test]
async fn with_public_url_and_jwt_issuer_the_issuer_is_jwt_issuer_and_the_endpoints_public_url() {
    let app = spawn_app_with(|s| {
        s.public_url =
            Some(gatehouse::config::PublicUrl::parse("https://example.com/auth").unwrap());
        s.jwt_issuer = Some("https://issuer.example/".to_owned());
    })
    .await;
    let mut expected = metadata_at("https://example.com/auth");
    expected["issuer"] = json!("https://issuer.example");
    assert_eq!(
        metadata(&app, &[("host", "evil.example")], PINNED).await,
        expected
    );
}

#[tokio::test]
async fn an_invalid_public_url_is_refused_at_start() {
    for public_url in [
        "auth.example.com",
        "ftp://auth.example.com",
        "https://user:pw@auth.example.com",
        "https://auth.example.com/?next=x",
        "https://auth.example.com/#x",
        " https://auth.example.com",
    ] {
        let out = crate::helpers::output_within(
            crate::helpers::gatehouse_command()
                .arg("serve")
                .env("PUBLIC_URL", public_url),
            "",
            std::time::Duration::from_secs(10),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{public_url}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "invalid value '{public_url}' for '--public-url <PUBLIC_URL>': must be the \
                 absolute http or https URL clients reach gatehouse at"
            )),
            "{stderr}"
        );
    }
}

/// Whether `serve --bind bind` with `env` warns that its URLs follow the `Host` header.
async fn warns_of_host_dependent_urls(bind: &str, env: &[(&str, &str)]) -> bool {
    let db = TestDb::new().await;
    let server = ServingBinary::start(&db.url, &["serve", "--bind", bind], env).await;
    let warning = "WARN gatehouse::app: listening beyond loopback without PUBLIC_URL or \
                   JWT_ISSUER: the URLs the metadata names follow each request's Host header \
                   (and are sent with Cache-Control: no-store); set PUBLIC_URL to the URL \
                   clients reach gatehouse at addr=";
    // The warning comes before the line that says the server listens, which start awaits.
    let log = server.log();
    assert!(log.contains("gatehouse listening"), "{log}");
    log.contains(warning)
}

#[tokio::test]
async fn serve_warns_when_listening_beyond_loopback_without_public_url_or_jwt_issuer() {
    assert!(warns_of_host_dependent_urls("0.0.0.0:0", &[]).await);
    assert!(!warns_of_host_dependent_urls("127.0.0.1:0", &[]).await);
    assert!(!warns_of_host_dependent_urls("[::1]:0", &[]).await);
    assert!(
        !warns_of_host_dependent_urls("0.0.0.0:0", &[("PUBLIC_URL", "https://auth.example.com")])
            .await
    );
    assert!(
        !warns_of_host_dependent_urls("0.0.0.0:0", &[("JWT_ISSUER", "https://auth.example.com")])
            .await
    );
}
