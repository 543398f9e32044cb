//! The OpenAPI document and the pages that render it, each built once, when first asked
//! for: a server nobody reads the documentation of never holds it in memory.
//!
//! The pages are small: they load the served document and Swagger UI's or ReDoc's
//! JavaScript and CSS from [`super::assets`], which the browser then caches for good.

use std::sync::OnceLock;

use serde_json::{json, Value};

use poem::http::StatusCode;

use super::{assets::DocAssets, routing::OPENAPI_PATH, security};
use crate::error::Error;

/// The served OpenAPI document and the Swagger UI and ReDoc pages that load it.
pub struct Docs {
    root_path: String,
    openapi_json: OnceLock<String>,
    pages: OnceLock<Pages>,
}

struct Pages {
    swagger_ui_html: String,
    redoc_html: String,
}

impl Docs {
    /// Behind a proxy that serves gatehouse under `root_path`, the document names that
    /// prefix as its server and in the password flow's `tokenUrl`, and the pages load
    /// their assets under it, so Swagger UI's Authorize button and "Try it out" reach
    /// the service through the proxy.
    pub fn new(root_path: &str) -> Self {
        Self {
            root_path: root_path.to_owned(),
            openapi_json: OnceLock::new(),
            pages: OnceLock::new(),
        }
    }

    pub fn openapi_json(&self) -> &str {
        self.openapi_json
            .get_or_init(|| document(&super::service().spec(), &self.root_path))
    }

    pub fn swagger_ui_html(&self) -> &str {
        &self.pages().swagger_ui_html
    }

    pub fn redoc_html(&self) -> &str {
        &self.pages().redoc_html
    }

    fn pages(&self) -> &Pages {
        self.pages.get_or_init(|| {
            let assets = DocAssets::get();
            let url = |path: &str| format!("{}{path}", self.root_path);
            // The pages load the document from /openapi.json rather than embedding it: it
            // is over 100 KB, and the pages stay a kilobyte each.
            let spec_url = url(OPENAPI_PATH);
            Pages {
                swagger_ui_html: SWAGGER_UI_PAGE
                    .replace("{css}", &url(&assets.swagger_ui_css.path))
                    .replace("{js}", &url(&assets.swagger_ui_js.path))
                    .replace("{spec_url}", &spec_url),
                redoc_html: REDOC_PAGE
                    .replace("{js}", &url(&assets.redoc_js.path))
                    .replace("{spec_url}", &spec_url),
            }
        })
    }
}

/// poem-openapi's Swagger UI page, with its assets linked instead of inlined.
const SWAGGER_UI_PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gatehouse - Swagger UI</title>
<link rel="stylesheet" href="{css}">
<script src="{js}"></script>
</head>
<body>
<div id="ui"></div>
<script>
SwaggerUIBundle({
  dom_id: "#ui",
  url: "{spec_url}",
  filter: false,
  deepLinking: true,
});
</script>
</body>
</html>
"##;

/// poem-openapi's ReDoc page without its web fonts from Google (the page works offline
/// without them), its script linked instead of inlined.
const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gatehouse - ReDoc</title>
<style>body { margin: 0; padding: 0; }</style>
<script src="{js}"></script>
</head>
<body>
<div id="redoc-container"></div>
<script>
Redoc.init("{spec_url}", { scrollYOffset: 50 }, document.getElementById("redoc-container"));
</script>
</body>
</html>
"#;

/// Each documented error response gets the body that operation really answers as its
/// example: poem-openapi can only give the shared `HTTPError` schema one example, which
/// Swagger UI would show under every status.
fn add_error_examples(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (method, operation) in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|methods| methods.iter_mut())
    {
        let creates = method == "post";
        // The login is the one operation with a body and no bearer token.
        let login = operation.get("security").is_none() && operation.get("requestBody").is_some();
        let Some(responses) = operation["responses"].as_object_mut() else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let status = status
                .parse()
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok());
            let Some(example) = status
                .filter(|s| s.is_client_error() || s.is_server_error())
                .and_then(|s| Error::example_body(s, login, creates))
            else {
                continue;
            };
            if let Some(media) = response["content"]["application/json"].as_object_mut() {
                media.insert("example".to_owned(), example);
            }
        }
    }
}

/// The OpenAPI document (pretty JSON) as served under `root_path`, from poem-openapi's
/// `generated` one.
///
/// `servers` names the path the API is served under (`/` unless
/// behind a proxy) rather than poem-openapi's empty list, which linters flag; an empty
/// `tags` list is left out.
pub fn document(generated: &str, root_path: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(generated) else {
        return generated.to_owned();
    };
    doc["servers"] = json!([{ "url": if root_path.is_empty() { "/" } else { root_path } }]);
    if !root_path.is_empty() {
        let token_url = &mut doc["components"]["securitySchemes"][security::SCHEME_NAME]["flows"]
            ["password"]["tokenUrl"];
        *token_url = json!(format!("{root_path}{}", security::TOKEN_URL));
    }
    add_error_examples(&mut doc);
    if doc["tags"].as_array().is_some_and(Vec::is_empty) {
        if let Some(top) = doc.as_object_mut() {
            top.shift_remove("tags");
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| generated.to_owned())
}
