//! Prometheus metrics on the separate `METRICS_BIND` listener.

use std::collections::HashMap;

use prometheus_parse::{Scrape, Value as Sample};
use serde_json::{json, Value};

use crate::helpers::{parts, spawn_app, spawn_app_with, ServingBinary, TestApp, TestDb};

async fn spawn_app_with_metrics(
    configure: impl FnOnce(&mut gatehouse::config::Settings),
) -> TestApp {
    spawn_app_with(|s| {
        s.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        configure(s);
    })
    .await
}

/// The metrics text, after checking how it is served.
pub async fn scrape_text(client: &reqwest::Client, metrics_address: &str) -> String {
    let resp = client
        .get(format!("{metrics_address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    resp.text().await.unwrap()
}

/// Every sample, keyed by name and sorted `label=value` pairs, e.g.
/// `gatehouse_logins_total{outcome=success}`.
pub fn samples(text: &str) -> HashMap<String, Sample> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    // The parser skips what it does not understand: every sample line must be in it.
    let lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    let parsed: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            // One sample per histogram, of its buckets; `_sum` and `_count` are samples
            // of their own.
            Sample::Histogram(buckets) => buckets.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(parsed, lines, "every sample line parses:\n{text}");
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            (format!("{}{{{}}}", s.metric, labels.join(",")), s.value)
        })
        .collect()
}

pub fn value(samples: &HashMap<String, Sample>, key: &str) -> f64 {
    match samples.get(key) {
        Some(Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v)) => *v,
        Some(Sample::Histogram(buckets)) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map_or(0.0, |b| b.count),
        other => panic!("no sample {key}: {other:?} in {:?}", samples.keys()),
    }
}

#[tokio::test]
async fn a_login_moves_the_login_and_request_counters_in_prometheus_text() {
    let app = spawn_app_with_metrics(|_| {}).await;
    let metrics = app.metrics_address.clone().expect("metrics listener");
    let before = samples(&scrape_text(&app.client, &metrics).await);
    assert!(!before.contains_key("gatehouse_logins_total{outcome=success}"));

    let token = app.token("johndoe", "secret").await;
    assert_eq!(app.login("johndoe", "wrong").await.status(), 401);
    assert_eq!(app.login("nobody", "wrong").await.status(), 401);
    assert_eq!(
        app.post_form("/token", &[("username", "johndoe")])
            .await
            .status(),
        422
    );
    assert_eq!(app.me(&token).await.status(), 200);
    assert_eq!(app.get("/users/me/", None).await.status(), 401);
    assert_eq!(app.get("/users/johndoe/secret", None).await.status(), 404);
    assert_eq!(app.get("/healthz", None).await.status(), 200);

    let text = scrape_text(&app.client, &metrics).await;
    let after = samples(&text);
    let login = "operation=login_for_access_token_token_post";
    let me = "operation=read_users_me_users_me__get";
    for (key, expected) in [
        ("gatehouse_logins_total{outcome=success}", 1.0),
        ("gatehouse_logins_total{outcome=invalid_credentials}", 2.0),
        ("gatehouse_logins_total{outcome=invalid_request}", 1.0),
        (
            &format!("gatehouse_http_requests_total{{{login},status=200}}"),
            1.0,
        ),
        (
            &format!("gatehouse_http_requests_total{{{login},status=401}}"),
            2.0,
        ),
        (
            &format!("gatehouse_http_requests_total{{{login},status=422}}"),
            1.0,
        ),
        (
            &format!("gatehouse_http_requests_total{{{me},status=200}}"),
            1.0,
        ),
        (
            &format!("gatehouse_http_requests_total{{{me},status=401}}"),
            1.0,
        ),
        (
            "gatehouse_http_requests_total{operation=other,status=404}",
            1.0,
        ),
        (
            "gatehouse_http_requests_total{operation=healthz_healthz_get,status=200}",
            1.0,
        ),
        (
            &format!("gatehouse_http_request_duration_seconds{{{login}}}"),
            4.0,
        ),
        ("gatehouse_hash_queue_depth{}", 0.0),
        (
            "gatehouse_hash_queue_capacity{}",
            16.0 * std::thread::available_parallelism().unwrap().get() as f64,
        ),
        ("gatehouse_throttled_requests_total{}", 0.0),
        ("gatehouse_database_errors_total{}", 0.0),
    ] {
        assert_eq!(value(&after, key), expected, "{key}");
    }
    // Low cardinality: no username, no raw path.
    assert!(!text.contains("johndoe") && !text.contains("nobody") && !text.contains("/users"));
    // Counters follow the conventions: `_total` and a HELP line each.
    assert!(text.contains("# TYPE gatehouse_logins_total counter"));
    assert!(text.contains("# TYPE gatehouse_http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn throttled_logins_are_counted_as_429s_and_as_a_login_outcome() {
    let app = spawn_app_with_metrics(|s| s.max_failed_logins_per_address = 1).await;
    assert_eq!(app.login("johndoe", "wrong").await.status(), 401);
    assert_eq!(app.login("johndoe", "wrong").await.status(), 429);

    let after = samples(&scrape_text(&app.client, app.metrics_address.as_deref().unwrap()).await);
    assert_eq!(value(&after, "gatehouse_throttled_requests_total{}"), 1.0);
    assert_eq!(
        value(&after, "gatehouse_logins_total{outcome=throttled}"),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "gatehouse_logins_total{outcome=invalid_credentials}"
        ),
        1.0
    );
}

#[tokio::test]
async fn every_answer_of_the_metrics_listener_carries_the_security_headers() {
    let app = spawn_app_with_metrics(|_| {}).await;
    let metrics = app.metrics_address.clone().expect("metrics listener");
    let security = || {
        vec![
            Some("nosniff".to_owned()),
            Some("DENY".to_owned()),
            Some("no-referrer".to_owned()),
        ]
    };
    let headers = [
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
    ];
    for (method, path, status) in [
        (reqwest::Method::GET, "/metrics", 200),
        (reqwest::Method::HEAD, "/metrics", 200),
        (reqwest::Method::POST, "/metrics", 405),
        (reqwest::Method::GET, "/users/me/", 404),
    ] {
        let resp = app
            .client
            .request(method.clone(), format!("{metrics}{path}"))
            .send()
            .await
            .unwrap();
        let (got, _, values) = parts(resp, &headers).await;
        assert_eq!((got, values), (status, security()), "{method} {path}");
    }
}

#[tokio::test]
async fn metrics_are_off_unless_configured_and_never_on_the_api_listener() {
    let app = spawn_app().await;
    assert!(app.metrics_address.is_none());
    let resp = app.get("/metrics", None).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
}

#[tokio::test]
async fn the_binary_serves_metrics_on_metrics_bind_and_only_at_metrics() {
    let db = TestDb::new().await;
    for (args, env) in [
        (vec!["serve", "--metrics-bind", "127.0.0.1:0"], vec![]),
        (vec!["serve"], vec![("METRICS_BIND", "127.0.0.1:0")]),
    ] {
        let server = ServingBinary::start(&db.url, &args, &env).await;
        assert!(
            server.logged(|l| l.contains("metrics listening")).await,
            "{}",
            server.log()
        );
        let log = server.log();
        let addr = log
            .lines()
            .find_map(|l| {
                l.split_once("metrics listening addr=")
                    .map(|(_, a)| a.trim().to_owned())
            })
            .expect("metrics address in the log");
        let client = reqwest::Client::new();
        let text = scrape_text(&client, &format!("http://{addr}")).await;
        assert!(samples(&text).contains_key("gatehouse_hash_queue_depth{}"));
        let other = client
            .get(format!("http://{addr}/users/me/"))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 404);
        let post = client
            .post(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 405);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_shed_by_a_saturated_hashing_pool_are_counted_as_busy() {
    // One hashing thread and no queue: concurrent logins beyond the first are shed.
    let app = spawn_app_with_metrics(|s| {
        s.hash_workers = Some(1);
        s.hash_queue_per_worker = 0;
    })
    .await;
    let logins = (0..8).map(|_| app.login("johndoe", "secret"));
    let statuses: Vec<u16> = futures_util::future::join_all(logins)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let shed = statuses.iter().filter(|s| **s == 503).count() as f64;
    let issued = statuses.iter().filter(|s| **s == 200).count() as f64;
    assert!(shed > 0.0 && issued > 0.0, "{statuses:?}");

    let after = samples(&scrape_text(&app.client, app.metrics_address.as_deref().unwrap()).await);
    assert_eq!(value(&after, "gatehouse_logins_total{outcome=busy}"), shed);
    assert_eq!(
        value(&after, "gatehouse_logins_total{outcome=success}"),
        issued
    );
    assert_eq!(
        value(
            &after,
            "gatehouse_unavailable_responses_total{reason=hashing_busy}"
        ),
        shed
    );
    assert_eq!(value(&after, "gatehouse_hash_queue_capacity{}"), 0.0);
    assert_eq!(value(&after, "gatehouse_hash_queue_depth{}"), 0.0);
}
