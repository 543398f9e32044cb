//! The OpenAPI document and the pages that render it.

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
            "description": "OAuth2 password flow: POST username and password to the token URL, then send `Authorization: Bearer <access_token>`.",
            "flows": {"password": {"tokenUrl": "/token", "scopes": {}}}
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
            vec!["200", "401", "408", "413", "422", "429", "503", "500"],
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
        json!([{"OAuth2PasswordBearer": []}])
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
    for status in ["401", "408", "413", "422", "429", "503", "500"] {
        assert_eq!(
            op("/token", "post")["responses"][status]["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/HTTPErrorOrValidationError"}),
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
    let swagger = app.get("/docs", None).await.text().await.unwrap();
    assert!(swagger.contains(r#""tokenUrl": "/auth/token""#));
    let redoc = app.get("/redoc", None).await.text().await.unwrap();
    assert!(redoc.contains(r#""tokenUrl": "/auth/token""#));
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
            html.contains("OAuth2PasswordBearer"),
            "{path} embeds the document"
        );
        assert_eq!(
            external_references(&html),
            Vec::<String>::new(),
            "{path} loads nothing from elsewhere"
        );
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
