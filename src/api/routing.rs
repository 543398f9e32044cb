//! The front door: answers what the inner routers would get wrong for FastAPI clients.
//!
//! One route table, taken from the API's own metadata plus the documentation pages and
//! their assets, decides before any handler runs: a known path with another method is 405
//! with `Allow`, the same path with the other trailing slash is a 307 to the declared form
//! (as FastAPI's `redirect_slashes`), anything else unknown is 404, and a declared body
//! over the limit is 413. All of them in FastAPI's `{"detail": ...}` shape. A request that passes gets
//! the scopes its operation declares ([`RequiredScopes`]), for the bearer check.

use std::{collections::HashMap, sync::Arc};

use poem::{
    http::{header, Method, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
};
use poem_openapi::OpenApi;

use super::{
    assets::ASSETS_PATH,
    authorize::{CONSENT_PATH, DOCS_REDIRECT_PATH, LOGIN_PATH},
    error::Error,
    form::MAX_BODY_BYTES,
    security::{self, RequiredScopes},
    Api,
};

/// Paths of the documentation pages, served besides the API.
pub const DOCS_PATH: &str = "/docs";
pub const REDOC_PATH: &str = "/redoc";
pub const OPENAPI_PATH: &str = "/openapi.json";

/// An operation's required scopes, shared by every request routed to it.
type Scopes = Arc<[&'static str]>;

/// One declared path (`/admin/users/{username}`): its methods, each with the scopes its
/// operation requires.
#[derive(Debug, Clone)]
struct Route {
    /// `None` for a segment that is a path parameter.
    segments: Vec<Option<String>>,
    methods: Vec<(Method, Scopes)>,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/');
        let mut declared = self.segments.iter();
        loop {
            match (declared.next(), parts.next()) {
                (None, None) => return true,
                (Some(Some(fixed)), Some(part)) if fixed == part => {}
                // A parameter is one non-empty segment.
                (Some(None), Some(part)) if !part.is_empty() => {}
                _ => return false,
            }
        }
    }

    fn method_list(&self) -> Vec<Method> {
        self.methods.iter().map(|(m, _)| m.clone()).collect()
    }

    fn required_scopes(&self, method: &Method) -> Option<&Scopes> {
        let method = if *method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.methods
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, scopes)| scopes)
    }
}

/// Every path gatehouse serves, with its methods and their scopes.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    root_path: String,
}

impl RouteTable {
    /// The operations of [`Api`], the documentation pages and their assets; redirects are
    /// prefixed with `root_path`.
    pub fn new(root_path: &str) -> Self {
        Self::for_api::<Api>(root_path)
    }

    /// [`RouteTable::new`] for the operations of `A`.
    pub fn for_api<A: OpenApi>(root_path: &str) -> Self {
        let mut routes: HashMap<String, Vec<(Method, Scopes)>> = HashMap::new();
        for path in A::meta().into_iter().flat_map(|api| api.paths) {
            let methods = routes.entry(path.path).or_default();
            methods.extend(path.operations.into_iter().map(|op| {
                let scopes = op
                    .security
                    .iter()
                    .find_map(|requirement| requirement.get(security::SCHEME_NAME))
                    .cloned()
                    .unwrap_or_default();
                (op.method, scopes.into())
            }));
        }
        // Every asset path is routed to the assets' endpoint, which loads them on first use.
        let assets = format!("{ASSETS_PATH}/{{name}}");
        for page in [
            DOCS_PATH,
            REDOC_PATH,
            OPENAPI_PATH,
            DOCS_REDIRECT_PATH,
            &assets,
        ] {
            routes.insert(page.to_owned(), vec![(Method::GET, Arc::from([]))]);
        }
        // The sign-in pages' forms.
        for form in [LOGIN_PATH, CONSENT_PATH] {
            routes.insert(form.to_owned(), vec![(Method::POST, Arc::from([]))]);
        }
        let mut routes: Vec<Route> = routes
            .into_iter()
            .map(|(path, methods)| Route {
                segments: path
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect(),
                methods,
            })
            .collect();
        // A fixed segment wins over a parameter: `/a/b` before `/a/{x}`.
        routes.sort_by_key(|r| r.segments.iter().filter(|s| s.is_none()).count());
        Self {
            routes,
            root_path: root_path.to_owned(),
        }
    }

    fn route(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }

    fn allow_header(methods: &[Method]) -> String {
        let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
        if methods.contains(&Method::GET) {
            names.push("HEAD");
        }
        names.join(", ")
    }

    /// `path` with the other trailing slash, if that is a declared path.
    fn other_slash(&self, path: &str) -> Option<String> {
        let other = match path.strip_suffix('/') {
            Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
            Some(_) => return None,
            None => format!("{path}/"),
        };
        self.route(&other).is_some().then_some(other)
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

    async fn call(&self, mut req: Request) -> Result<Response> {
        let path = req.uri().path();
        let Some(route) = self.table.route(path) else {
            return match self.table.other_slash(path) {
                Some(declared) => Ok(redirect(
                    &self.table.root_path,
                    &declared,
                    req.uri().query(),
                )),
                None => Err(Error::NotFound.into()),
            };
        };
        let Some(scopes) = route.required_scopes(req.method()) else {
            let allow = RouteTable::allow_header(&route.method_list());
            return Err(Error::MethodNotAllowed { allow }.into());
        };
        if declared_length(&req).is_some_and(|len| len > MAX_BODY_BYTES as u64) {
            return Err(Error::BodyTooLarge.into());
        }
        req.set_data(RequiredScopes(Arc::clone(scopes)));
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
        assert!(table.route("/users/me/").is_some());
        assert!(table.route("/users/me/items/").is_some());
        assert!(table.route("/token").is_some());
        assert_eq!(
            table.other_slash("/users/me").as_deref(),
            Some("/users/me/")
        );
        assert_eq!(table.other_slash("/token/").as_deref(), Some("/token"));
        assert_eq!(table.other_slash("/"), None);
        assert!(table.route("/admin/users/carol").is_some());
        assert!(table.route("/admin/users/").is_some());
        assert!(table.route("/admin/users/carol/x").is_none());
        assert_eq!(
            table.other_slash("/admin/users/carol/").as_deref(),
            Some("/admin/users/carol")
        );
        assert_eq!(table.other_slash("/nope"), None);
    }
}
