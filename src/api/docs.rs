//! The OpenAPI document and the pages that render it, each built once, when first asked
//! for: a server nobody reads the documentation of never holds it in memory.
//!
//! The pages are small: they load the served document and Swagger UI's or ReDoc's
//! JavaScript and CSS from [`super::assets`], which the browser then caches for good.
//!
//! Each page is sent with a `Content-Security-Policy` that allows scripts, styles and
//! requests of the page's own origin and no framing. The one inline script that starts
//! Swagger UI or ReDoc is allowed by its SHA-256 hash, never by `'unsafe-inline'`.
//! ReDoc's policy also allows inline styles (its CSS-in-JS library writes `<style>`
//! elements) and workers from `blob:` URLs (its search runs in one).

use std::sync::OnceLock;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use poem::{
    http::{header, StatusCode},
    Response,
};

use super::{
    assets::DocAssets,
    authorize::{DOCS_CLIENT_ID, DOCS_REDIRECT_PATH},
    error::Error,
    routing::OPENAPI_PATH,
    security,
};

/// The served OpenAPI document and the Swagger UI and ReDoc pages that load it.
pub struct Docs {
    root_path: String,
    openapi_json: OnceLock<String>,
    pages: OnceLock<Pages>,
}

struct Pages {
    swagger_ui: Page,
    redoc: Page,
    oauth2_redirect: Page,
}

/// A page and its `Content-Security-Policy`.
struct Page {
    html: String,
    policy: String,
}

impl Page {
    /// `template` with `{script}` replaced by `script`, the page's one inline script,
    /// which `policy` (with `{script_hash}` for the script's hash) allows.
    fn new(template: &str, script: &str, policy: &str) -> Self {
        let hash = STANDARD.encode(Sha256::digest(script.as_bytes()));
        Self {
            html: template.replace("{script}", script),
            policy: policy.replace("{script_hash}", &format!("'sha256-{hash}'")),
        }
    }

    fn response(&self) -> Response {
        Response::builder()
            .content_type("text/html; charset=utf-8")
            .header(header::CONTENT_SECURITY_POLICY, self.policy.as_str())
            .body(self.html.clone())
    }
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

    /// `GET /docs`: Swagger UI.
    pub fn swagger_ui_page(&self) -> Response {
        self.pages().swagger_ui.response()
    }

    /// `GET /docs/oauth2-redirect`: where gatehouse's login page sends Swagger UI's
    /// authorization-code sign-in back.
    pub fn oauth2_redirect_page(&self) -> Response {
        self.pages().oauth2_redirect.response()
    }

    /// `GET /redoc`: ReDoc.
    pub fn redoc_page(&self) -> Response {
        self.pages().redoc.response()
    }

    fn pages(&self) -> &Pages {
        self.pages.get_or_init(|| {
            let assets = DocAssets::get();
            let url = |path: &str| format!("{}{path}", self.root_path);
            // The pages load the document from /openapi.json rather than embedding it: it
            // is over 100 KB, and the pages stay a kilobyte each.
            // ROOT_PATH is a path of RFC 3986 characters: it cannot end the attribute or
            // the string literal it is written into, but `&` must be written as `&amp;`
            // in an attribute.
            let attribute = |path: &str| url(path).replace('&', "&amp;");
            let spec_url = url(OPENAPI_PATH);
            Pages {
                swagger_ui: Page::new(
                    &SWAGGER_UI_PAGE
                        .replace("{css}", &attribute(&assets.swagger_ui_css.path))
                        .replace("{js}", &attribute(&assets.swagger_ui_js.path)),
                    &SWAGGER_UI_SCRIPT
                        .replace("{spec_url}", &spec_url)
                        .replace("{redirect_path}", &url(DOCS_REDIRECT_PATH))
                        .replace("{client_id}", DOCS_CLIENT_ID),
                    SWAGGER_UI_POLICY,
                ),
                oauth2_redirect: Page::new(
                    OAUTH2_REDIRECT_PAGE,
                    OAUTH2_REDIRECT_SCRIPT,
                    OAUTH2_REDIRECT_POLICY,
                ),
                redoc: Page::new(
                    &REDOC_PAGE.replace("{js}", &attribute(&assets.redoc_js.path)),
                    &REDOC_SCRIPT.replace("{spec_url}", &spec_url),
                    REDOC_POLICY,
                ),
            }
        })
    }
}

/// Swagger UI's policy: scripts, styles, images and requests (the document, Authorize's
/// `POST /token`, "Try it out") of the page's origin, images also as `data:` URLs (its CSS
/// has icons so); nothing else, and no framing.
const SWAGGER_UI_POLICY: &str = "default-src 'none'; script-src 'self' {script_hash}; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// ReDoc's: Swagger UI's, with inline styles (ReDoc writes `<style>` elements, and the page
/// has one) and its search's worker, started from a `blob:` URL; it has no form.
const REDOC_POLICY: &str = "default-src 'none'; script-src 'self' {script_hash}; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     worker-src blob:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

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
<script>{script}</script>
</body>
</html>
"##;

/// The script that starts Swagger UI.
const SWAGGER_UI_SCRIPT: &str = r##"
const ui = SwaggerUIBundle({
  dom_id: "#ui",
  url: "{spec_url}",
  filter: false,
  deepLinking: true,
  oauth2RedirectUrl: window.location.origin + "{redirect_path}",
});
ui.initOAuth({ clientId: "{client_id}", usePkceWithAuthorizationCodeGrant: true });
"##;

/// The redirect page of Swagger UI's authorization-code sign-in: it hands the code (or
/// the error) of its query to the Swagger UI window that opened the sign-in, then closes.
const OAUTH2_REDIRECT_PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>gatehouse - signing in</title>
</head>
<body>
<p>Signing in&hellip; this window closes by itself.</p>
<script>{script}</script>
</body>
</html>
"##;

/// What Swagger UI's own `oauth2-redirect.html` does for the authorization-code flow,
/// written for this page: Swagger UI waits on `window.opener.swaggerUIRedirectOauth2`.
const OAUTH2_REDIRECT_SCRIPT: &str = r##"
(function () {
  var oauth2 = window.opener && window.opener.swaggerUIRedirectOauth2;
  if (!oauth2) { return; }
  var query = new URLSearchParams(window.location.search);
  var code = query.get("code");
  if (query.get("state") !== oauth2.state) {
    oauth2.errCb({ authId: oauth2.auth.name, source: "auth", level: "warning",
      message: "The state sent back is not the one sent: the sign-in may not be yours." });
  } else if (code) {
    delete oauth2.state;
    oauth2.auth.code = code;
    oauth2.callback({ auth: oauth2.auth, redirectUrl: oauth2.redirectUrl });
  } else {
    oauth2.errCb({ authId: oauth2.auth.name, source: "auth", level: "error",
      message: "[" + (query.get("error") || "error") + "]: " +
        (query.get("error_description") || "no code was sent back") });
  }
  window.close();
})();
"##;

/// The redirect page's policy: its one script, nothing else.
const OAUTH2_REDIRECT_POLICY: &str = "default-src 'none'; script-src {script_hash}; \
     form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

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
<script>{script}</script>
</body>
</html>
"#;

/// The script that starts ReDoc.
const REDOC_SCRIPT: &str = r#"
Redoc.init("{spec_url}", { scrollYOffset: 50 }, document.getElementById("redoc-container"));
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
        let operation_id = operation["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
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
                .and_then(|s| {
                    Error::operation_example_body(&operation_id, s)
                        .or_else(|| Error::example_body(s, login, creates))
                })
            else {
                continue;
            };
            // `get_mut`, not indexing: indexing would add a JSON media type to the pages'.
            if let Some(media) = response
                .get_mut("content")
                .and_then(|content| content.get_mut("application/json"))
                .and_then(Value::as_object_mut)
            {
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
        let flows = &mut doc["components"]["securitySchemes"][security::SCHEME_NAME]["flows"];
        flows["password"]["tokenUrl"] = json!(format!("{root_path}{}", security::TOKEN_URL));
        let code_flow = &mut flows["authorizationCode"];
        code_flow["tokenUrl"] = json!(format!("{root_path}{}", security::TOKEN_URL));
        code_flow["authorizationUrl"] =
            json!(format!("{root_path}{}", security::AUTHORIZATION_URL));
    }
    add_error_examples(&mut doc);
    if doc["tags"].as_array().is_some_and(Vec::is_empty) {
        if let Some(top) = doc.as_object_mut() {
            top.shift_remove("tags");
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| generated.to_owned())
}
