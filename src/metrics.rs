//! Prometheus metrics: what the service counts, the middleware that counts HTTP answers,
//! and the `/metrics` endpoint of the separate `METRICS_BIND` listener.
//!
//! Labels have few values by construction: an operation is its operationId (or one of a
//! few fixed names), never a raw path or a username, and a status is one of the handful
//! the service answers. Each [`App`](crate::app::App) has a registry of its own, so
//! services in one process (tests) never mix their counts.

use std::{sync::Arc, time::Instant};

use poem::{
    endpoint::make_sync,
    http::{header, Method, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response, Result, Route,
};
use poem_openapi::OperationId;
use prometheus_client::{
    encoding::{prometheus_text, EncodeLabelSet, EncodeLabelValue},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

use crate::{
    api::{
        assets::ASSETS_PATH,
        error::Error,
        routing::{DOCS_PATH, OPENAPI_PATH, REDOC_PATH},
    },
    auth::hashing_pool::PasswordHasher,
};

/// Path of the metrics on the metrics listener.
pub const METRICS_PATH: &str = "/metrics";

/// The login's operationId: its answers are also counted as login outcomes.
const LOGIN_OPERATION: &str = "login_for_access_token_token_post";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// How a login ended, as the client saw it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum LoginOutcome {
    /// 200: a token was issued.
    success,
    /// 401: unknown user or wrong password.
    invalid_credentials,
    /// 429: too many failed logins for the username or the address.
    throttled,
    /// 503: the hashing pool was saturated.
    busy,
    /// 503: the database failed.
    unavailable,
    /// 408, 413, 422: the form was missing, malformed, too large or too slow.
    invalid_request,
    /// Anything else (500).
    error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    outcome: LoginOutcome,
}

/// Why a 503 was answered.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum UnavailableReason {
    hashing_busy,
    database,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: UnavailableReason,
}

/// Everything gatehouse counts; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<OperationLabels, Histogram, fn() -> Histogram>,
    logins: Family<LoginLabels, Counter>,
    throttled: Counter,
    unavailable: Family<ReasonLabels, Counter>,
    database_errors: Counter,
    hash_queue_depth: Gauge,
    hash_queue_capacity: Gauge,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~4 s: JWT checks take well under a millisecond, logins tens of
    // milliseconds, and a queued login up to ~1.6 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by operation (operationId; docs, redoc, openapi, \
             assets, or other for unknown paths and methods) and status",
            requests.clone(),
        );
        let durations =
            Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by operation",
            durations.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "logins",
            "Password logins (POST /token) by outcome",
            logins.clone(),
        );
        let throttled = Counter::default();
        registry.register(
            "throttled_requests",
            "Requests answered 429: too many failed logins for a username or an address",
            throttled.clone(),
        );
        let unavailable = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "unavailable_responses",
            "Requests answered 503, by reason (hashing_busy, database)",
            unavailable.clone(),
        );
        let database_errors = Counter::default();
        registry.register(
            "database_errors",
            "Database failures met while answering requests (answered 503, cause logged)",
            database_errors.clone(),
        );
        let hash_queue_depth = Gauge::default();
        registry.register(
            "hash_queue_depth",
            "Logins waiting for a password hashing thread",
            hash_queue_depth.clone(),
        );
        let hash_queue_capacity = Gauge::default();
        registry.register(
            "hash_queue_capacity",
            "Logins that may wait for a hashing thread before logins are answered 503",
            hash_queue_capacity.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            requests,
            durations,
            logins,
            throttled,
            unavailable,
            database_errors,
            hash_queue_depth,
            hash_queue_capacity,
        }))
    }

    /// Counts one answer of `operation`.
    fn record(
        &self,
        operation: &'static str,
        status: StatusCode,
        cause: Option<&Error>,
        start: Instant,
    ) {
        let m = &self.0;
        m.requests
            .get_or_create(&RequestLabels {
                operation,
                status: status.as_u16(),
            })
            .inc();
        m.durations
            .get_or_create(&OperationLabels { operation })
            .observe(start.elapsed().as_secs_f64());
        let database = matches!(cause, Some(Error::Database(_)));
        if database {
            m.database_errors.inc();
        }
        match status {
            StatusCode::TOO_MANY_REQUESTS => m.throttled.inc(),
            StatusCode::SERVICE_UNAVAILABLE => {
                let reason = if database {
                    UnavailableReason::database
                } else {
                    UnavailableReason::hashing_busy
                };
                m.unavailable.get_or_create(&ReasonLabels { reason }).inc()
            }
            _ => 0,
        };
        if operation == LOGIN_OPERATION {
            let outcome = match status {
                StatusCode::OK => LoginOutcome::success,
                StatusCode::UNAUTHORIZED => LoginOutcome::invalid_credentials,
                StatusCode::TOO_MANY_REQUESTS => LoginOutcome::throttled,
                StatusCode::SERVICE_UNAVAILABLE if database => LoginOutcome::unavailable,
                StatusCode::SERVICE_UNAVAILABLE => LoginOutcome::busy,
                StatusCode::REQUEST_TIMEOUT
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNPROCESSABLE_ENTITY => LoginOutcome::invalid_request,
                _ => LoginOutcome::error,
            };
            m.logins.get_or_create(&LoginLabels { outcome }).inc();
        }
    }

    /// The metrics in the Prometheus text format, gauges read from `hasher` now.
    pub fn render(&self, hasher: &PasswordHasher) -> String {
        let m = &self.0;
        m.hash_queue_depth
            .set(i64::try_from(hasher.waiting()).unwrap_or(i64::MAX));
        m.hash_queue_capacity
            .set(i64::try_from(hasher.queue_capacity()).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &m.registry);
        text
    }

    /// The metrics listener's routes: `GET /metrics`.
    pub fn endpoint(&self, hasher: PasswordHasher) -> impl Endpoint<Output = Response> {
        let metrics = self.clone();
        Route::new().at(
            METRICS_PATH,
            make_sync(move |req| {
                if req.method() != Method::GET && req.method() != Method::HEAD {
                    return Response::builder()
                        .status(StatusCode::METHOD_NOT_ALLOWED)
                        .header(header::ALLOW, "GET, HEAD")
                        .finish();
                }
                Response::builder()
                    .content_type(prometheus_text::CONTENT_TYPE)
                    .header(header::CACHE_CONTROL, "no-store")
                    .body(metrics.render(&hasher))
            }),
        )
    }
}

/// The operation label of a request that no handler claimed.
fn page_operation(path: &str) -> &'static str {
    match path {
        DOCS_PATH => "docs",
        REDOC_PATH => "redoc",
        OPENAPI_PATH => "openapi",
        _ if path.starts_with(ASSETS_PATH) => "assets",
        _ => "other",
    }
}

/// Middleware counting every answer of the endpoint it wraps, errors included (it sits
/// inside the layer that turns errors into responses, so it sees the [`Error`] itself).
pub struct HttpMetrics(pub Metrics);

impl<E: Endpoint> Middleware<E> for HttpMetrics {
    type Output = HttpMetricsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HttpMetricsEndpoint {
            inner,
            metrics: self.0.clone(),
        }
    }
}

pub struct HttpMetricsEndpoint<E> {
    inner: E,
    metrics: Metrics,
}

impl<E: Endpoint> Endpoint for HttpMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let start = Instant::now();
        let page = page_operation(req.uri().path());
        let result = self.inner.call(req).await.map(IntoResponse::into_response);
        let (status, operation, cause) = match &result {
            Ok(resp) => (resp.status(), resp.data::<OperationId>(), None),
            Err(err) => (
                err.status(),
                err.data::<OperationId>(),
                err.downcast_ref::<Error>(),
            ),
        };
        let operation = operation.map_or(page, |id| id.0);
        self.metrics.record(operation, status, cause, start);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclaimed_paths_get_a_fixed_operation_name() {
        assert_eq!(page_operation("/docs"), "docs");
        assert_eq!(page_operation("/assets/swagger-ui.0123.css"), "assets");
        assert_eq!(page_operation("/users/johndoe/secret"), "other");
    }
}
