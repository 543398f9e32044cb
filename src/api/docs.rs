//! The OpenAPI document and the pages that render it, built once at start-up.

use poem_openapi::OpenApiService;
use serde_json::{json, Value};

use poem::http::StatusCode;

use super::{security, Api};
use crate::error::Error;

const REDOC_WEB_FONTS: &str = r#"<link href="https://fonts.googleapis.com/css?family=Montserrat:300,400,700|Roboto:300,400,700" rel="stylesheet">"#;

/// The served OpenAPI document and the Swagger UI and ReDoc pages that embed it.
pub struct Docs {
    pub openapi_json: String,
    pub swagger_ui_html: String,
    pub redoc_html: String,
}

impl Docs {
    /// Behind a proxy that serves gatehouse under `root_path`, the document names that
    /// prefix as its server and in the password flow's `tokenUrl`, so Swagger UI's
    /// Authorize button and "Try it out" reach the service through the proxy.
    pub fn new(service: &OpenApiService<Api, ()>, root_path: &str) -> Self {
        let generated = service.spec();
        let openapi_json = document(&generated, root_path);
        // The pages embed the generated document verbatim; swap in the served one.
        let embed = |html: String| html.replacen(&generated, &openapi_json, 1);
        Self {
            swagger_ui_html: embed(service.swagger_ui_html()),
            // ReDoc's template fetches web fonts from Google; the page works offline without them.
            redoc_html: embed(service.redoc_html()).replacen(REDOC_WEB_FONTS, "", 1),
            openapi_json,
        }
    }
}

/// Each documented error response gets the body that operation really answers as its
/// example: poem-openapi can only give the shared `HTTPError` schema one example, which
/// Swagger UI would show under every status.
fn add_error_examples(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|methods| methods.values_mut())
    {
        let authenticated = operation.get("security").is_some();
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
                .and_then(|s| Error::example_body(s, authenticated))
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
