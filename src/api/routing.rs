//! The front door: answers what the inner routers would get wrong for FastAPI clients.
//!
//! One route table, taken from the API's own metadata plus the documentation pages and
//! their assets, decides before any handler runs: a known path with another method is 405
//! with `Allow`, the same path with the other trailing slash is a 307 to the declared form
//! (as FastAPI's `redirect_slashes`), anything else unknown is 404, and a declared body
//! over the limit is 413. All of them in FastAPI's `{"detail": ...}` shape.

use std::{collections::HashMap, sync::Arc};

use poem::{
    http::{header, Method, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};
use poem_openapi::OpenApi;

use super::{assets::DocAssets, form::MAX_BODY_BYTES, Api};
use crate::error::Error;

/// Paths of the documentation pages, served besides the API.
pub const DOCS_PATH: &str = "/docs";
pub const REDOC_PATH: &str = "/redoc";
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Every path gatehouse serves, with its methods.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: HashMap<String, Vec<Method>>,
    root_path: String,
}

impl RouteTable {
    /// The operations of [`Api`], the documentation pages and their assets; redirects are
    /// prefixed with `root_path`.
    pub fn new(root_path: &str) -> Self {
        let mut routes: HashMap<String, Vec<Method>> = HashMap::new();
        for path in <Api as OpenApi>::meta()
            .into_iter()
            .flat_map(|api| api.paths)
        {
            let methods = routes.entry(path.path).or_default();
            methods.extend(path.operations.into_iter().map(|op| op.method));
        }
        let assets = DocAssets::get().all().map(|asset| asset.path.as_str());
        for page in [DOCS_PATH, REDOC_PATH, OPENAPI_PATH]
            .into_iter()
            .chain(assets)
        {
            routes.insert(page.to_owned(), vec![Method::GET]);
        }
        Self {
            routes,
            root_path: root_path.to_owned(),
        }
    }

    fn allows(methods: &[Method], method: &Method) -> bool {
        methods.contains(method) || (*method == Method::HEAD && methods.contains(&Method::GET))
    }

    fn allow_header(methods: &[Method]) -> String {
        let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
        if methods.contains(&Method::GET) {
            names.push("HEAD");
        }
        names.join(", ")
    }

    /// The declared path that differs from `path` only by its trailing slash.
    fn other_slash(&self, path: &str) -> Option<&str> {
        let other = match path.strip_suffix('/') {
            Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
            Some(_) => return None,
            None => format!("{path}/"),
        };
        self.routes.get_key_value(&other).map(|(k, _)| k.as_str())
    }
}

/// Middleware applying a [`RouteTable`] in front of the inner endpoint.
pub struct RouteGuard(Arc<RouteTable>);

impl RouteGuard {
    pub fn new(table: RouteTable) -> Self {
        Self(Arc::new(table))
    }
}

impl<E: Endpoint> Middleware<E> for RouteGuard {
    type Output = RouteGuardEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RouteGuardEndpoint {
            inner,
            table: Arc::clone(&self.0),
        }
    }
}

pub struct RouteGuardEndpoint<E> {
    inner: E,
    table: Arc<RouteTable>,
}

impl<E: Endpoint> Endpoint for RouteGuardEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let path = req.uri().path();
        let Some(methods) = self.table.routes.get(path) else {
            return match self.table.other_slash(path) {
                Some(declared) => Ok(redirect(&self.table.root_path, declared, req.uri().query())),
                None => Err(Error::NotFound.into()),
            };
        };
        if !RouteTable::allows(methods, req.method()) {
            let allow = RouteTable::allow_header(methods);
            return Err(Error::MethodNotAllowed { allow }.into());
        }
        if declared_length(&req).is_some_and(|len| len > MAX_BODY_BYTES as u64) {
            return Err(Error::BodyTooLarge.into());
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// 307 keeps the method and body, so a POST to `/token/` is re-sent to `/token`.
fn redirect(root_path: &str, path: &str, query: Option<&str>) -> Response {
    let location = match query {
        Some(q) => format!("{root_path}{path}?{q}"),
        None => format!("{root_path}{path}"),
    };
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(header::LOCATION, location)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table_has_the_declared_trailing_slashes() {
        let table = RouteTable::new("");
        assert!(table.routes.contains_key("/users/me/"));
        assert!(table.routes.contains_key("/users/me/items/"));
        assert!(table.routes.contains_key("/token"));
        assert_eq!(table.other_slash("/users/me"), Some("/users/me/"));
        assert_eq!(table.other_slash("/token/"), Some("/token"));
        assert_eq!(table.other_slash("/"), None);
        assert_eq!(table.other_slash("/nope"), None);
    }
}
