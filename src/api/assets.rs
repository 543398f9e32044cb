//! Swagger UI's and ReDoc's JavaScript and CSS, served from the binary at their own paths.
//!
//! poem-openapi inlines them into every `/docs` and `/redoc` page (1.6 MB of HTML, uncached,
//! uncompressed). gatehouse takes them out of poem-openapi's pages once per process and
//! serves each at a content-hashed path, so the pages stay small and browsers cache the
//! assets for good (`immutable`): a new version is a new path. Each asset is gzipped once,
//! on first request, never per request.

use std::{
    hash::{Hash, Hasher},
    io::Write,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use flate2::{write::GzEncoder, Compression};
use poem::{
    endpoint::make,
    http::{header, HeaderMap},
    Endpoint, Request, Response,
};

use super::error::Error;

/// Where the assets are served, under `ROOT_PATH`.
pub const ASSETS_PATH: &str = "/assets";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One asset: its content, and its gzip encoding once somebody has asked for it.
pub struct Asset {
    /// Path under the service root, e.g. `/assets/swagger-ui-bundle.0123456789abcdef.js`.
    pub path: String,
    content_type: &'static str,
    content: Bytes,
    gzipped: OnceLock<Bytes>,
}

impl Asset {
    fn new(name: &str, extension: &str, content_type: &'static str, content: String) -> Self {
        // A name that changes with the content: any stable hash does, it is not a secret.
        let mut hasher = std::hash::DefaultHasher::new();
        content.hash(&mut hasher);
        Self {
            path: format!("{ASSETS_PATH}/{name}.{:016x}.{extension}", hasher.finish()),
            content_type,
            content: Bytes::from(content),
            gzipped: OnceLock::new(),
        }
    }

    fn gzipped(&self) -> Bytes {
        self.gzipped
            .get_or_init(|| {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
                // Writing to a Vec cannot fail.
                let _ = encoder.write_all(&self.content);
                encoder.finish().map(Bytes::from).unwrap_or_default()
            })
            .clone()
    }

    /// The asset, gzipped when the request accepts it.
    async fn response(self: Arc<Self>, req: Request) -> Response {
        let resp = Response::builder()
            .content_type(self.content_type)
            .header(header::CACHE_CONTROL, IMMUTABLE)
            .header(header::VARY, "Accept-Encoding");
        if accepts_gzip(req.headers()) {
            let gzipped = match self.gzipped.get() {
                Some(gzipped) => gzipped.clone(),
                // Compressing the first time takes a moment: not on the async workers.
                None => {
                    let asset = Arc::clone(&self);
                    tokio::task::spawn_blocking(move || asset.gzipped())
                        .await
                        .unwrap_or_default()
                }
            };
            if !gzipped.is_empty() {
                return resp.header(header::CONTENT_ENCODING, "gzip").body(gzipped);
            }
        }
        resp.body(self.content.clone())
    }
}

/// Whether `Accept-Encoding` allows gzip (RFC 9110 §12.5.3): listed, or covered by `*`,
/// with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(weight > 0.0);
            } else if coding == "*" {
                any = Some(weight > 0.0);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

static ASSETS: OnceLock<DocAssets> = OnceLock::new();

/// The documentation pages' assets.
pub struct DocAssets {
    pub swagger_ui_js: Arc<Asset>,
    pub swagger_ui_css: Arc<Asset>,
    pub redoc_js: Arc<Asset>,
}

impl DocAssets {
    /// The endpoint of every asset path (`/assets/{name}`): the asset named, or the JSON
    /// 404 of an unknown path. The assets are loaded on the first request for one (or for
    /// a documentation page), off the async workers.
    pub fn endpoint() -> impl Endpoint<Output = Response> {
        make(|req: Request| async move {
            let assets = match ASSETS.get() {
                Some(assets) => assets,
                None => tokio::task::spawn_blocking(Self::get)
                    .await
                    .map_err(|_| poem::Error::from(Error::NotFound))?,
            };
            let path = req.uri().path().to_owned();
            match assets.all().into_iter().find(|asset| asset.path == path) {
                Some(asset) => Ok(Arc::clone(asset).response(req).await),
                None => Err(poem::Error::from(Error::NotFound)),
            }
        })
    }

    /// The assets poem-openapi embeds, taken from its pages once per process.
    pub fn get() -> &'static Self {
        ASSETS.get_or_init(|| {
            let service = super::service();
            let swagger = service.swagger_ui_html();
            let redoc = service.redoc_html();
            Self::from_pages(&swagger, &redoc)
        })
    }

    fn from_pages(swagger_ui_html: &str, redoc_html: &str) -> Self {
        let css = between(swagger_ui_html, "<style charset=\"UTF-8\">", "</style>");
        let js = between(
            swagger_ui_html,
            "<script charset=\"UTF-8\">",
            "</script>\n</head>",
        );
        let redoc = between(
            redoc_html,
            "<script charset=\"UTF-8\">",
            "</script>\n  </head>",
        );
        let asset = |name, ext, content_type, content: &str| {
            Arc::new(Asset::new(name, ext, content_type, content.to_owned()))
        };
        Self {
            swagger_ui_js: asset(
                "swagger-ui-bundle",
                "js",
                "text/javascript; charset=utf-8",
                js,
            ),
            swagger_ui_css: asset("swagger-ui", "css", "text/css; charset=utf-8", css),
            redoc_js: asset(
                "redoc.standalone",
                "js",
                "text/javascript; charset=utf-8",
                redoc,
            ),
        }
    }

    pub fn all(&self) -> [&Arc<Asset>; 3] {
        [&self.swagger_ui_js, &self.swagger_ui_css, &self.redoc_js]
    }
}

/// The text between the first `start` and the last `end` after it; empty when absent.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    text.split_once(start)
        .and_then(|(_, rest)| rest.rsplit_once(end))
        .map_or("", |(inner, _)| inner)
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn accepts(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).expect("header"),
        );
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_used_only_when_accepted_with_a_non_zero_weight() {
        assert!(accepts("gzip"));
        assert!(accepts("br, gzip;q=0.5"));
        assert!(accepts("GZIP"));
        assert!(accepts("*"));
        assert!(accepts("x-gzip"));
        assert!(!accepts("br"));
        assert!(!accepts("identity"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip;q=0.0, *"));
        assert!(!accepts("*;q=0"));
        assert!(accepts("*;q=0, gzip"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn poem_openapi_pages_yield_the_whole_assets() {
        let assets = DocAssets::get();
        let text = |a: &Asset| String::from_utf8_lossy(&a.content).into_owned();
        let js = text(&assets.swagger_ui_js);
        assert!(js.len() > 500_000 && js.contains("SwaggerUIBundle"));
        assert!(
            !js.contains("let spec = "),
            "the page's own script is left out"
        );
        let css = text(&assets.swagger_ui_css);
        assert!(css.len() > 50_000 && css.contains(".swagger-ui"));
        assert!(!css.contains("<script"));
        let redoc = text(&assets.redoc_js);
        assert!(redoc.len() > 500_000 && redoc.contains("Redoc"));
        assert!(!redoc.contains("let spec = "));
        for asset in assets.all() {
            assert!(asset.path.starts_with("/assets/"), "{}", asset.path);
        }
    }
}
