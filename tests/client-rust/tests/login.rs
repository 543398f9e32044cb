//! The progenitor client, generated from the committed document, against the real service.

mod snippet;

use gatehouse::{
    app::App,
    config::{ServeArgs, Settings},
};
use gatehouse_client::{types, Client, Error};
use secrecy::SecretString;
use tempfile::TempDir;

/// The service on a free port with a fresh database and the demo users.
struct Service {
    base_url: String,
    _dir: TempDir,
}

async fn start_service() -> Service {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("gatehouse.db").display()
    );
    let mut settings = Settings::for_database(url);
    settings.secret_key = Some(SecretString::from(
        "client-test-secret-key-that-is-long-enough-0123",
    ));
    let serve = ServeArgs {
        bind: "127.0.0.1:0".parse().expect("address"),
        demo: true,
    };
    let app = App::build(&settings, &serve).await.expect("app starts");
    let base_url = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped());
    Service {
        base_url,
        _dir: dir,
    }
}

fn login_form(username: &str, password: &str) -> types::BodyLoginForAccessTokenTokenPost {
    types::BodyLoginForAccessTokenTokenPost {
        username: username.parse().expect("valid username"),
        password: password.parse().expect("valid password"),
        grant_type: Some("password".parse().expect("valid grant_type")),
        refresh_token: None,
        scope: None,
        client_id: None,
        client_secret: None,
        otp: None,
        code: None,
        redirect_uri: None,
        code_verifier: None,
    }
}

#[tokio::test]
async fn generated_client_logs_in_and_reads_the_user_and_the_items() {
    let service = start_service().await;

    let (user, items) = snippet::read_me(&service.base_url, "johndoe", "secret")
        .await
        .expect("the Rust snippet of docs/clients.md runs");

    assert_eq!(user.username, "johndoe");
    assert_eq!(user.email.as_deref(), Some("johndoe@example.com"));
    assert_eq!(user.full_name.as_deref(), Some("John Doe"));
    assert!(!user.disabled);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].item_id, "Foo");
    assert_eq!(items[0].owner, "johndoe");
}

#[tokio::test]
async fn generated_client_reads_the_token_and_its_cache_headers() {
    let service = start_service().await;

    let response = Client::new(&service.base_url)
        .login_for_access_token_token_post(&login_form("johndoe", "secret"))
        .await
        .expect("login succeeds");

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let token = response.into_inner();
    assert_eq!(token.token_type, "bearer");
    assert_eq!(token.expires_in, 1800);
    assert_eq!(token.access_token.split('.').count(), 3);
}

#[tokio::test]
async fn generated_client_reports_a_wrong_password_as_a_typed_401() {
    let service = start_service().await;

    let err = Client::new(&service.base_url)
        .login_for_access_token_token_post(&login_form("johndoe", "wrong"))
        .await
        .expect_err("login fails");

    let Error::ErrorResponse(response) = err else {
        panic!("expected a documented error response, got {err:?}");
    };
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let types::OAuthErrorOrHttpError::HttpError(body) = response.into_inner() else {
        panic!("expected an HTTPError body");
    };
    assert_eq!(body.detail, "Incorrect username or password");
}

#[tokio::test]
async fn generated_client_reports_a_missing_token_as_a_typed_401() {
    let service = start_service().await;

    let err = Client::new(&service.base_url)
        .read_users_me_users_me_get()
        .await
        .expect_err("no token");

    let Error::ErrorResponse(response) = err else {
        panic!("expected a documented error response, got {err:?}");
    };
    assert_eq!(response.status(), 401);
    assert_eq!(response.into_inner().detail, "Not authenticated");
}

/// `/token`'s errors share one schema, so its 422 arrives typed like the others. 600
/// two-byte characters pass the document's `maxLength` in characters but not the
/// service's 1024-byte limit.
#[tokio::test]
async fn generated_client_reports_a_too_long_password_as_a_typed_422() {
    let service = start_service().await;

    let err = Client::new(&service.base_url)
        .login_for_access_token_token_post(&login_form("johndoe", &"é".repeat(600)))
        .await
        .expect_err("password too long");

    let Error::ErrorResponse(response) = err else {
        panic!("expected a documented error response, got {err:?}");
    };
    assert_eq!(response.status(), 422);
    let types::OAuthErrorOrHttpError::HttpValidationError(body) = response.into_inner() else {
        panic!("expected an HTTPValidationError body");
    };
    assert_eq!(body.detail.len(), 1);
    assert_eq!(body.detail[0].type_, "string_too_long");
    assert_eq!(body.detail[0].loc, ["body", "password"]);
}

#[test]
fn generated_types_enforce_the_documented_form_limits() {
    assert!(""
        .parse::<types::BodyLoginForAccessTokenTokenPostUsername>()
        .is_err());
    assert!("a"
        .repeat(129)
        .parse::<types::BodyLoginForAccessTokenTokenPostUsername>()
        .is_err());
    assert!("client_credentials"
        .parse::<types::BodyLoginForAccessTokenTokenPostGrantType>()
        .is_err());
    assert!("password"
        .parse::<types::BodyLoginForAccessTokenTokenPostGrantType>()
        .is_ok());
}

/// A generated client sending `Authorization: Bearer <token of username>`, the token asked
/// for `scope` when given.
async fn bearer(base_url: &str, username: &str, password: &str, scope: Option<&str>) -> Client {
    let mut form = login_form(username, password);
    form.scope = scope.map(|s| s.parse().expect("valid scope"));
    let token = Client::new(base_url)
        .login_for_access_token_token_post(&form)
        .await
        .expect("login succeeds")
        .into_inner();
    let bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.access_token))
        .expect("header value");
    let headers = reqwest::header::HeaderMap::from_iter([(reqwest::header::AUTHORIZATION, bearer)]);
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("http client");
    Client::new_with_client(base_url, http)
}

#[tokio::test]
async fn generated_client_creates_a_user_changes_its_scopes_and_disables_it() {
    let service = start_service().await;
    let admin = bearer(&service.base_url, "johndoe", "secret", Some("admin")).await;

    let created = admin
        .create_user_admin_users_post(&types::AdminUserCreate {
            username: "rs-carol".parse().expect("valid username"),
            password: "carol-pw".parse().expect("valid password"),
            email: Some("carol@example.com".parse().expect("valid email")),
            full_name: None,
            disabled: None,
            scopes: Vec::new(),
        })
        .await
        .expect("created");
    assert_eq!(created.status(), 201);
    assert_eq!(created.scopes, [types::Scope::Me, types::Scope::Items]);

    let carol = bearer(&service.base_url, "rs-carol", "carol-pw", None).await;
    assert!(carol.read_own_items_users_me_items_get().await.is_ok());

    let changed = admin
        .update_user_admin_users_username_patch(
            "rs-carol",
            &types::AdminUserUpdate {
                scopes: vec![types::Scope::Me],
                ..Default::default()
            },
        )
        .await
        .expect("changed");
    assert_eq!(changed.scopes, [types::Scope::Me]);
    match carol.read_own_items_users_me_items_get().await {
        Err(Error::ErrorResponse(refused)) => {
            assert_eq!(refused.status(), 401);
            assert_eq!(refused.detail, "Not enough permissions");
        }
        other => panic!("expected a 401, got {other:?}"),
    }

    let disabled = admin
        .update_user_admin_users_username_patch(
            "rs-carol",
            &types::AdminUserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("disabled");
    assert!(disabled.disabled);
    assert!(carol.read_users_me_users_me_get().await.is_err());
}
