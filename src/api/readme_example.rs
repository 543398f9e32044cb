//! docs/architecture.md's "Adding your own protected operation": `reports.rs` is the file
//! it shows, and `Scope::Reports` the variant it adds. This test serves it and calls it,
//! so the example cannot rot; `docs::markdown` in the API tests checks that the page shows
//! exactly that code.

use std::time::Duration;

use poem::{
    http::{header, Method, StatusCode},
    Endpoint, EndpointExt, Request, Route,
};
use poem_openapi::OpenApiService;
use secrecy::SecretString;
use serde_json::{json, Value};

use super::{
    auth::TokenApi,
    reports::ReportsApi,
    routing::{RouteGuard, RouteTable},
    AppState,
};
use crate::{
    accounts::{
        manage::{self, NewAccount},
        Accounts, Scopes, SessionRules,
    },
    auth::{
        password::PasswordHasher,
        refresh_token::RefreshTokenKey,
        token::{SigningKey, TokenAuthority, TokenSettings},
    },
    config::Settings,
};

async fn call(ep: &impl Endpoint, req: Request) -> (StatusCode, Value, Option<String>) {
    let resp = ep.get_response(req).await;
    let status = resp.status();
    let challenge = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().into_json().await.unwrap_or(Value::Null);
    (status, body, challenge)
}

#[tokio::test]
async fn readme_example_operation_answers_only_tokens_with_its_new_scope() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::for_database(format!(
        "sqlite://{}/gatehouse.db?mode=rwc",
        dir.path().display()
    ));
    let db = crate::app::open_database(&settings).await.unwrap();
    let hasher = PasswordHasher::new(1, 4).unwrap();
    for (username, scopes) in [("carol", "me reports"), ("dave", "me items")] {
        let account = NewAccount {
            username: username.to_owned(),
            email: None,
            full_name: None,
            disabled: false,
            scopes: Scopes::strict(scopes).unwrap(),
        };
        let password = SecretString::from("a long enough password");
        manage::add_user(&db, &hasher, &Default::default(), account, password)
            .await
            .unwrap();
    }
    let key = SigningKey::new(vec![7; 32]).unwrap();
    let lifetime = Duration::from_secs(1800);
    let tokens = TokenAuthority::new(
        &key,
        TokenSettings {
            lifetime,
            ..Default::default()
        },
    );
    let limits = settings.login_limits();
    let sessions = SessionRules {
        refresh_lifetime: settings.refresh_token_lifetime(),
        reuse_interval: settings.refresh_reuse_interval(),
        max_per_user: settings.max_sessions_per_user,
        key: RefreshTokenKey::new(&key),
    };
    let state = AppState {
        accounts: Accounts::new(db, tokens, hasher, limits, None, sessions),
        client_timeout: Duration::from_secs(10),
        trusted_proxies: Vec::new().into(),
        jwks_max_age: Duration::from_secs(300),
        public_url: None,
        jwt_issuer: None,
        root_path: "".into(),
        metrics: crate::metrics::Metrics::new(),
    };
    type Served = (TokenApi, ReportsApi);
    let ep = Route::new()
        .nest("/", OpenApiService::new(Served::default(), "example", "1"))
        .data(state)
        .with(RouteGuard::new(RouteTable::for_api::<Served>("")));

    let token = |username: &'static str| {
        let ep = &ep;
        async move {
            let login = Request::builder()
                .method(Method::POST)
                .uri_str("/token")
                .content_type("application/x-www-form-urlencoded")
                .body(format!(
                    "username={username}&password=a+long+enough+password"
                ));
            let (status, body, _) = call(ep, login).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let reports = |token: String| {
        Request::builder()
            .uri_str("/reports")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .finish()
    };
    assert_eq!(
        call(&ep, reports(token("carol").await)).await,
        (
            StatusCode::OK,
            json!(["Q3 sales, as carol may read them"]),
            None
        )
    );
    assert_eq!(
        call(&ep, reports(token("dave").await)).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Not enough permissions"}),
            Some(r#"Bearer scope="reports", error="insufficient_scope""#.to_owned())
        )
    );
}
