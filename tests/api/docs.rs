//! The OpenAPI document and the pages that render it; [`markdown`]: the repository's
//! Markdown documentation.

mod markdown;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

/// The committed `openapi/openapi.json` must be what the handlers generate and what the
/// server serves, byte for byte. `UPDATE_OPENAPI=1 cargo test` rewrites it.
#[tokio::test]
async fn served_document_is_the_committed_openapi_json() {
    let app = spawn_app().await;
    let resp = app.get("/openapi.json", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served = resp.text().await.unwrap();
    assert_eq!(
        served,
        gatehouse::api::docs::document(&gatehouse::api::service().spec(), ""),
        "served = generated"
    );

    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &served).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == served,
        "openapi/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test --test api docs` and commit it"
    );
}

#[tokio::test]
async fn document_declares_the_tutorial_contract() {
    let doc: Value = serde_json::from_str(&gatehouse::api::docs::document(
        &gatehouse::api::service().spec(),
        "",
    ))
    .unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"],
        json!({"OAuth2PasswordBearer": {
            "type": "oauth2",
            "description": "OAuth2 password flow: POST username and password to the token URL, then send `Authorization: Bearer <access_token>`. Or the authorization-code flow with PKCE: sign in on gatehouse's own login page (Swagger UI's client is `gatehouse-docs`).",
            "flows": {
                "password": {"tokenUrl": "/token", "scopes": {
                    "me": "Read information about the current user.",
                    "items": "Read items.",
                    "admin": "Manage users (create, read, change, disable and delete them) and OAuth clients.",
                    "introspect": "Introspect tokens (for other services verifying them).",
                }},
                "authorizationCode": {"authorizationUrl": "/authorize", "tokenUrl": "/token", "scopes": {
                    "me": "Read information about the current user.",
                    "items": "Read items.",
                    "admin": "Manage users (create, read, change, disable and delete them) and OAuth clients.",
                    "introspect": "Introspect tokens (for other services verifying them).",
                    "openid": "Sign in with OpenID Connect: an id token, and /userinfo.",
                    "profile": "With openid: the username and full name.",
                    "email": "With openid: the email address and whether it is verified.",
                }},
            }
        }})
    );
    assert_eq!(doc["servers"], json!([{"url": "/"}]));
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Token",
        "User",
        "Item",
        "HTTPError",
        "HTTPValidationError",
        "ValidationError",
        "Body_login_for_access_token_token_post",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let expected = [
        (
            "/token",
            "post",
            "login_for_access_token_token_post",
            vec![
                "200", "400", "401", "408", "413", "422", "429", "503", "500",
            ],
        ),
        (
            "/users/me/",
            "get",
            "read_users_me_users_me__get",
            vec!["200", "400", "401", "413", "503", "500"],
        ),
        (
            "/users/me/items/",
            "get",
            "read_own_items_users_me_items__get",
            vec!["200", "400", "401", "413", "503", "500"],
        ),
    ];
    for (path, method, id, statuses) in expected {
        let op = op(path, method);
        assert_eq!(op["operationId"], id);
        let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert_eq!(documented, statuses, "{path}");
    }
    assert_eq!(
        op("/users/me/", "get")["security"],
        json!([{"OAuth2PasswordBearer": ["me"]}])
    );
    assert!(op("/token", "post")["security"].is_null());
    // Each error status shows the body that operation really answers.
    let example = |path, method, status: &str| {
        op(path, method)["responses"][status]["content"]["application/json"]["example"].clone()
    };
    assert_eq!(
        example("/token", "post", "401"),
        json!({"detail": "Incorrect username or password"})
    );
    assert_eq!(
        example("/users/me/", "get", "401"),
        json!({"detail": "Could not validate credentials"})
    );
    assert_eq!(
        example("/users/me/", "get", "400"),
        json!({"detail": "Inactive user"})
    );
    assert_eq!(
        example("/token", "post", "400"),
        json!({"error": "invalid_grant", "error_description": "The refresh token is invalid, expired or revoked"})
    );
    assert_eq!(
        op("/token", "post")["responses"]["400"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/OAuthErrorOrHTTPError"})
    );
    assert_eq!(
        example("/token", "post", "429"),
        json!({"detail": "Too many failed attempts, retry later"})
    );
    // The urlencoded form only, as FastAPI declares it: generators take one media type.
    let body = op("/token", "post")["requestBody"]["content"].clone();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["application/x-www-form-urlencoded"]
    );
    // One error schema per operation, as progenitor requires; 422 is its first shape.
    assert_eq!(
        doc["components"]["schemas"]["HTTPErrorOrValidationError"]["oneOf"],
        json!([
            {"$ref": "#/components/schemas/HTTPValidationError"},
            {"$ref": "#/components/schemas/HTTPError"}
        ])
    );
    // With the OAuth errors of the refresh grant: one more shape, between the two.
    assert_eq!(
        doc["components"]["schemas"]["OAuthErrorOrHTTPError"]["oneOf"],
        json!([
            {"$ref": "#/components/schemas/HTTPValidationError"},
            {"$ref": "#/components/schemas/OAuthError"},
            {"$ref": "#/components/schemas/HTTPError"}
        ])
    );
    for status in ["400", "401", "408", "413", "422", "429", "503", "500"] {
        assert_eq!(
            op("/token", "post")["responses"][status]["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/OAuthErrorOrHTTPError"}),
            "{status}"
        );
    }
    assert_eq!(
        op("/users/me/", "get")["responses"]["401"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/HTTPError"})
    );
}

#[tokio::test]
async fn behind_a_proxy_the_document_names_the_root_path() {
    let app = spawn_app_with(|s| s.root_path = "/auth".into()).await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    assert_eq!(doc["servers"], json!([{"url": "/auth"}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]
            ["tokenUrl"],
        "/auth/token"
    );
    // The pages load that document through the proxy.
    let swagger = app.get("/docs", None).await.text().await.unwrap();
    assert!(
        swagger.contains(r#"url: "/auth/openapi.json""#),
        "{swagger}"
    );
    let redoc = app.get("/redoc", None).await.text().await.unwrap();
    assert!(
        redoc.contains(r#"Redoc.init("/auth/openapi.json""#),
        "{redoc}"
    );
}

#[tokio::test]
async fn swagger_ui_and_redoc_are_served_from_the_binary() {
    let app = spawn_app().await;
    for (path, marker) in [("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")] {
        let resp = app.get(path, None).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = resp.text().await.unwrap();
        assert!(html.contains(marker), "{path}");
        assert!(
            html.contains(r#""/openapi.json""#),
            "{path} loads the document from /openapi.json"
        );
        assert_eq!(
            external_references(&html),
            Vec::<String>::new(),
            "{path} loads nothing from elsewhere"
        );
    }
}

/// The text of the page's inline scripts (those without `src`).
fn inline_scripts(html: &str) -> Vec<&str> {
    html.split("<script>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</script>").map(|(script, _)| script))
        .collect()
}

#[tokio::test]
async fn docs_pages_send_a_policy_allowing_their_own_assets_and_one_inline_script_by_hash() {
    use base64::Engine as _;
    use sha2::Digest as _;
    for root_path in ["", "/auth"] {
        let app = spawn_app_with(|s| s.root_path = root_path.to_owned()).await;
        for (path, styles, worker_and_forms) in [
            ("/docs", "'self'", "form-action 'self'"),
            (
                "/redoc",
                "'self' 'unsafe-inline'",
                "worker-src blob:; form-action 'none'",
            ),
        ] {
            let resp = app.get(path, None).await;
            assert_eq!(resp.status(), 200, "{path}");
            let policy = resp.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            let html = resp.text().await.unwrap();
            let scripts = inline_scripts(&html);
            assert_eq!(scripts.len(), 1, "{path}: {html}");
            assert!(
                scripts[0].contains(&format!("\"{root_path}/openapi.json\"")),
                "{path}: {html}"
            );
            let hash = base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(scripts[0].as_bytes()));
            assert_eq!(
                policy,
                format!(
                    "default-src 'none'; script-src 'self' 'sha256-{hash}'; style-src {styles}; \
                     img-src 'self' data:; connect-src 'self'; {worker_and_forms}; \
                     base-uri 'none'; frame-ancestors 'none'"
                ),
                "{root_path}{path}"
            );
        }
        // The policy is the pages'; the document and the API's answers need none.
        for path in ["/openapi.json", "/healthz"] {
            let resp = app.get(path, None).await;
            assert!(
                resp.headers().get("content-security-policy").is_none(),
                "{path}"
            );
        }
    }
}

/// `src`/`href` attributes of the page's own tags (not inside scripts) that point off-site.
fn external_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let tag_end = rest[start..].find('>').map_or(rest.len(), |e| start + e);
        let tag = &rest[start..tag_end];
        for attr in ["src=\"", "href=\""] {
            if let Some(at) = tag.find(attr) {
                let value = &tag[at + attr.len()..];
                if ["http:", "https:", "//"]
                    .iter()
                    .any(|p| value.starts_with(p))
                {
                    found.push(tag.to_owned());
                }
            }
        }
        // Inline script bodies are code, not references: skip to their end.
        rest = if tag.starts_with("<script") {
            rest[tag_end..]
                .find("</script>")
                .map_or("", |e| &rest[tag_end + e + "</script>".len()..])
        } else {
            &rest[tag_end..]
        };
    }
    found
}

#[test]
fn external_reference_check_catches_an_off_site_link() {
    let page = r#"<html><link href="https://fonts.example/x.css" rel="stylesheet"><script>let u = "<a href='https://in.code'>";</script><img src="/local.png"></html>"#;
    assert_eq!(
        external_references(page),
        vec![r#"<link href="https://fonts.example/x.css" rel="stylesheet""#]
    );
}

/// The `src` or `href` of the page's tags that load from `prefix`.
fn asset_links(html: &str, prefix: &str) -> Vec<String> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| html.split(attr).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .filter(|link| link.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn docs_pages_are_small_and_their_assets_cached_for_good() {
    let app = spawn_app().await;
    let client = &app.client;
    let document = app.get("/openapi.json", None).await.text().await.unwrap();
    for (page, count) in [("/docs", 2), ("/redoc", 1)] {
        let html = app.get(page, None).await.text().await.unwrap();
        // A page of markup: the document (over 100 KB) is fetched, nothing inlined.
        assert!(
            html.len() < 2_000 && document.len() > 100_000,
            "{page} is {} bytes, the document {}",
            html.len(),
            document.len()
        );
        let links = asset_links(&html, "/assets/");
        assert_eq!(links.len(), count, "{page} links {links:?}");
        for link in links {
            let plain = client.get(app.url(&link)).send().await.unwrap();
            assert_eq!(plain.status(), 200, "{link}");
            let h = plain.headers().clone();
            let expected_type = if link.ends_with(".css") {
                "text/css; charset=utf-8"
            } else {
                "text/javascript; charset=utf-8"
            };
            assert_eq!(h["content-type"], expected_type, "{link}");
            assert_eq!(
                h["cache-control"], "public, max-age=31536000, immutable",
                "{link}"
            );
            assert_eq!(h["vary"], "Accept-Encoding", "{link}");
            assert!(h.get("content-encoding").is_none(), "{link}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{link}");
            let content = plain.bytes().await.unwrap();
            assert!(content.len() > 100_000, "{link}: {} bytes", content.len());

            let gzipped = client
                .get(app.url(&link))
                .header("Accept-Encoding", "br;q=1.0, gzip;q=0.8")
                .send()
                .await
                .unwrap();
            assert_eq!(gzipped.status(), 200, "{link}");
            let h = gzipped.headers().clone();
            assert_eq!(h["content-encoding"], "gzip", "{link}");
            assert_eq!(h["vary"], "Accept-Encoding", "{link}");
            assert_eq!(h["content-type"], expected_type, "{link}");
            let compressed = gzipped.bytes().await.unwrap();
            assert!(
                compressed.len() * 3 < content.len(),
                "{link}: {} of {} bytes",
                compressed.len(),
                content.len()
            );
            let mut unzipped = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&compressed[..]),
                &mut unzipped,
            )
            .unwrap();
            assert!(unzipped == content, "{link}: gzip decodes to the asset");

            let refused = client
                .get(app.url(&link))
                .header("Accept-Encoding", "gzip;q=0")
                .send()
                .await
                .unwrap();
            assert!(refused.headers().get("content-encoding").is_none());
        }
    }
}

#[tokio::test]
async fn behind_a_proxy_the_pages_load_their_assets_under_the_root_path() {
    let app = spawn_app_with(|s| s.root_path = "/auth".into()).await;
    for page in ["/docs", "/redoc"] {
        let html = app.get(page, None).await.text().await.unwrap();
        let links = asset_links(&html, "/");
        assert!(!links.is_empty(), "{page}");
        for link in links {
            let served = link.strip_prefix("/auth/assets/").expect("prefixed link");
            // The proxy strips the prefix: the service answers the path without it.
            let resp = app.get(&format!("/assets/{served}"), None).await;
            assert_eq!(resp.status(), 200, "{link}");
        }
    }
}

#[tokio::test]
async fn asset_paths_follow_the_route_guard() {
    let app = spawn_app().await;
    let html = app.get("/docs", None).await.text().await.unwrap();
    let css = asset_links(&html, "/assets/")
        .into_iter()
        .find(|l| l.ends_with(".css"))
        .unwrap();

    let stale = app
        .get("/assets/swagger-ui.0000000000000000.css", None)
        .await;
    assert_eq!(stale.status(), 404);
    assert_eq!(
        stale.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );

    let post = app.client.post(app.url(&css)).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    assert_eq!(
        post.json::<Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed"})
    );
}
