//! docs/architecture.md's "Adding your own protected operation": `reports.rs` is the file
//! it shows, and `Scope::Reports` the variant it adds. This test serves it and calls it,
//! so the example cannot rot; `docs::markdown` in the API tests checks that the page shows
//! exactly that code.

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
        Scopes,
    },
    db,
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
    let db = db::migrated_for_tests(dir.path()).await;
    let state = AppState::for_tests(db);
    for (username, scopes) in [("carol", "me reports"), ("dave", "me items")] {
        let account = NewAccount {
            username: username.to_owned(),
            email: None,
            full_name: None,
            disabled: false,
            scopes: Scopes::strict(scopes).unwrap(),
        };
        let password = SecretString::from("a long enough password");
        let (db, hasher) = (state.accounts.db(), state.accounts.hasher());
        manage::add_user(db, hasher, &Default::default(), account, password)
            .await
            .unwrap();
    }
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
