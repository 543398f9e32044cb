//! Sign in with gatehouse through HTTP: `GET /authorize`, the login and consent pages,
//! the code grant at `/token`, id tokens, `/userinfo`, discovery and logout (SPEC §12),
//! every refusal of the issue, and a code redeemed across two PostgreSQL replicas.

use std::collections::HashMap;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gatehouse::auth::token::JwtAlgorithm;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{segment, spawn_app, spawn_app_with, ServingBinary, TestApp, TestDb};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "https://app.example.com/callback";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A browser: keeps cookies, follows nothing, reads forms.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// An answer: status, `Location`, body, headers.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The query of the redirect's `Location`.
    fn query(&self) -> HashMap<String, String> {
        let location = self.location.as_deref().expect("a redirect");
        let url = url::Url::parse(location).expect("an absolute Location");
        url.query_pairs().into_owned().collect()
    }

    /// The form's fields (hidden ones with their values), and its action.
    fn form(&self) -> (String, Vec<(String, String)>) {
        let attr = |tag: &str, name: &str| {
            let needle = format!("{name}=\"");
            tag.find(&needle).map(|i| {
                let rest = &tag[i + needle.len()..];
                html_unescape(&rest[..rest.find('"').unwrap()])
            })
        };
        let form_at = self.body.find("<form").expect("a form");
        let form_tag = &self.body[form_at..form_at + self.body[form_at..].find('>').unwrap()];
        let action = attr(form_tag, "action").unwrap();
        let fields = self
            .body
            .split("<input")
            .skip(1)
            .filter_map(|tag| {
                let tag = &tag[..tag.find('>').unwrap()];
                (attr(tag, "type").as_deref() == Some("hidden"))
                    .then(|| (attr(tag, "name").unwrap(), attr(tag, "value").unwrap()))
            })
            .collect();
        (action, fields)
    }
}

fn html_unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn answer(&mut self, resp: reqwest::Response) -> Answer {
        for set in resp.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, _) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path_and_query: &str) -> Answer {
        let resp = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.answer(resp).await
    }

    async fn post(&mut self, path: &str, fields: &[(String, String)]) -> Answer {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(fields)
            .send()
            .await
            .unwrap();
        self.answer(resp).await
    }

    /// Submits `page`'s form with its hidden fields and `extra`.
    async fn submit(&mut self, page: &Answer, extra: &[(&str, &str)]) -> Answer {
        let (action, mut fields) = page.form();
        fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.post(&action, &fields).await
    }

    /// Signs in on `page` (a login page).
    async fn sign_in(&mut self, page: &Answer, user: &str, password: &str) -> Answer {
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("name=\"password\""), "{}", page.body);
        self.submit(page, &[("username", user), ("password", password)])
            .await
    }
}

/// `/authorize?...` for `client_id` with `scope`, PKCE and `extra`.
fn authorize_path(client_id: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code".to_owned()),
        ("client_id", client_id.to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("scope", scope.to_owned()),
        ("state", "st4te".to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
        ("nonce", "n0nce".to_owned()),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v.to_string()));
        }
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/authorize?{query}")
}

/// Registers a client through the admin API; its id and secret.
async fn register(app_url: &str, admin: &str, body: Value) -> (String, Option<String>) {
    let resp = reqwest::Client::new()
        .post(format!("{app_url}/admin/clients/"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    (
        body["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().map(str::to_owned),
    )
}

async fn first_party(app: &TestApp) -> String {
    let admin = app.token("johndoe", "secret").await;
    register(
        &app.url(""),
        &admin,
        json!({"client_name": "First App", "redirect_uris": [REDIRECT], "confidential": false,
               "first_party": true, "post_logout_redirect_uris": ["https://app.example.com/bye"]}),
    )
    .await
    .0
}

/// Exchanges `code` at `/token` for public client `client_id`.
async fn exchange(base: &str, client_id: &str, code: &str, verifier: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn eddsa_app() -> TestApp {
    spawn_app_with(|s| s.jwt_algorithm = JwtAlgorithm::EdDsa).await
}

#[tokio::test]
async fn a_first_party_client_signs_in_with_a_code_an_id_token_and_userinfo_under_eddsa() {
    code_flow_with_id_token(JwtAlgorithm::EdDsa).await;
}

#[tokio::test]
async fn a_first_party_client_signs_in_with_a_code_an_id_token_and_userinfo_under_rs256() {
    code_flow_with_id_token(JwtAlgorithm::Rs256).await;
}

async fn code_flow_with_id_token(algorithm: JwtAlgorithm) {
    let app = spawn_app_with(|s| s.jwt_algorithm = algorithm).await;
    let client_id = first_party(&app).await;
    let mut browser = Browser::new(&app.url(""));

    let page = browser
        .get(&authorize_path(&client_id, "openid profile email me", &[]))
        .await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("form-action 'self' https://app.example.com"),
        "{csp}"
    );
    assert!(page.body.contains("First App"));
    let done = browser.sign_in(&page, "johndoe", "secret").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location.as_deref().unwrap().starts_with(REDIRECT));
    let query = done.query();
    assert_eq!(query["state"], "st4te");
    assert_eq!(query["iss"], app.url(""));
    assert!(browser.cookies.contains_key("gatehouse_session"));

    let (status, token) = exchange(&app.url(""), &client_id, &query["code"], VERIFIER).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["scope"], "me openid profile email");
    assert!(token["refresh_token"].is_string());
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(app.me(access).await.status(), 200);

    let id_token = token["id_token"].as_str().unwrap();
    let header = segment(id_token, 0);
    assert_eq!(header["alg"], algorithm.as_str());
    assert!(header["kid"].is_string());
    let claims = segment(id_token, 1);
    let user = gatehouse::db::user::find(&app.db, "johndoe")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], user.id.to_string());
    assert_eq!(claims["aud"], client_id.as_str());
    assert_eq!(claims["iss"], app.url(""));
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["preferred_username"], "johndoe");
    assert_eq!(claims["email"], "johndoe@example.com");
    assert_eq!(claims["email_verified"], true);
    assert!(claims["auth_time"].as_u64().unwrap() <= claims["iat"].as_u64().unwrap());
    let digest = match algorithm {
        JwtAlgorithm::Rs256 => Sha256::digest(access.as_bytes()).to_vec(),
        _ => sha2::Sha512::digest(access.as_bytes()).to_vec(),
    };
    assert_eq!(
        claims["at_hash"],
        URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
    );

    let info: Value = app
        .client
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info,
        json!({"sub": user.id.to_string(), "name": "John Doe", "preferred_username": "johndoe",
               "email": "johndoe@example.com", "email_verified": true})
    );
    // A password-grant token has no `openid`: userinfo refuses it.
    let password_token = app.token("johndoe", "secret").await;
    let resp = app
        .client
        .get(app.url("/userinfo"))
        .bearer_auth(&password_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // The refresh keeps the OpenID Connect scopes.
    let refreshed: Value = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token["refresh_token"].as_str().unwrap()),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["scope"], "me openid profile email");
    let resp = app
        .client
        .post(app.url("/userinfo"))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Single sign-on: the next authorization needs no password.
    let again = browser.get(&authorize_path(&client_id, "me", &[])).await;
    assert_eq!(again.status, 302, "{}", again.body);
    assert!(again.query().contains_key("code"));
    // prompt=login asks again.
    let login_again = browser
        .get(&authorize_path(&client_id, "me", &[("prompt", "login")]))
        .await;
    assert_eq!(login_again.status, 200);
    assert!(login_again.body.contains("name=\"password\""));
    let after = browser.sign_in(&login_again, "johndoe", "secret").await;
    assert_eq!(after.status, 303, "prompt=login is met by the new sign-in");

    // Logout with the id token as the hint.
    logs_out_to_the_registered_page(
        &mut browser,
        &client_id,
        &format!("id_token_hint={id_token}"),
    )
    .await;
}

/// `browser` logs out, naming the client by `client` (`client_id=...` or
/// `id_token_hint=...`): it is sent back at once to the registered page with `state`, and
/// its next authorization asks for the password again.
async fn logs_out_to_the_registered_page(browser: &mut Browser, client_id: &str, client: &str) {
    let out = browser
        .get(&format!(
            "/logout?{client}&post_logout_redirect_uri=https://app.example.com/bye&state=s"
        ))
        .await;
    assert_eq!(out.status, 302, "{}", out.body);
    assert_eq!(
        out.location.as_deref(),
        Some("https://app.example.com/bye?state=s")
    );
    assert_eq!(
        browser
            .get(&authorize_path(client_id, "me", &[]))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn discovery_names_the_endpoints_and_openid_is_refused_under_hs256() {
    let app = eddsa_app().await;
    let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["authorization_endpoint"], app.url("/authorize"));
    assert_eq!(doc["userinfo_endpoint"], app.url("/userinfo"));
    assert_eq!(doc["end_session_endpoint"], app.url("/logout"));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert!(doc["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("openid")));

    let hs256 = spawn_app().await;
    let doc: Value = reqwest::get(hs256.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!([]));
    assert!(!doc["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("openid")));
    let client_id = first_party(&hs256).await;
    let mut browser = Browser::new(&hs256.url(""));
    let refused = browser
        .get(&authorize_path(&client_id, "openid", &[]))
        .await;
    assert_eq!(refused.status, 302);
    assert_eq!(refused.query()["error"], "invalid_scope");
    // Without openid, HS256 serves the code flow.
    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    let done = browser.sign_in(&page, "johndoe", "secret").await;
    let (status, token) =
        exchange(&hs256.url(""), &client_id, &done.query()["code"], VERIFIER).await;
    assert_eq!(status, 200, "{token}");
    assert!(token.get("id_token").is_none());
}

#[tokio::test]
async fn unknown_clients_and_redirect_uris_get_an_error_page_never_a_redirect() {
    let app = spawn_app().await;
    let client_id = first_party(&app).await;
    let mut browser = Browser::new(&app.url(""));
    let unknown = browser.get(&authorize_path("nobody", "me", &[])).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.location.is_none());
    assert!(unknown.body.contains("not registered"));
    for redirect in [
        "https://app.example.com/callback/extra",
        "https://app.example.com/callback?x=1",
        "https://evil.example.com/callback",
        "http://app.example.com/callback",
    ] {
        let page = browser
            .get(&authorize_path(
                &client_id,
                "me",
                &[("redirect_uri", redirect)],
            ))
            .await;
        assert_eq!(page.status, 400, "{redirect}");
        assert!(page.location.is_none(), "{redirect}");
        assert_eq!(
            page.headers["content-type"].to_str().unwrap(),
            "text/html; charset=utf-8"
        );
    }
}

#[tokio::test]
async fn requests_without_s256_pkce_or_with_bad_parameters_are_sent_back_with_an_error() {
    let app = spawn_app().await;
    let client_id = first_party(&app).await;
    let mut browser = Browser::new(&app.url(""));
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "me nonsense")], "invalid_scope"),
        (vec![("prompt", "none")], "login_required"),
        (vec![("max_age", "soon")], "invalid_request"),
    ] {
        let answer = browser.get(&authorize_path(&client_id, "me", &extra)).await;
        assert_eq!(answer.status, 302, "{extra:?}: {}", answer.body);
        let query = answer.query();
        assert_eq!(query["error"], error, "{extra:?}");
        assert_eq!(query["state"], "st4te");
        assert_eq!(query["iss"], app.url(""));
        assert!(!query.contains_key("code"));
    }
    // A parameter sent twice.
    let twice = format!("{}&scope=me", authorize_path(&client_id, "me", &[]));
    assert_eq!(
        browser.get(&twice).await.query()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn a_code_works_once_and_its_reuse_ends_the_session_it_started() {
    let app = spawn_app().await;
    let client_id = first_party(&app).await;
    let mut browser = Browser::new(&app.url(""));
    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    let code = browser.sign_in(&page, "johndoe", "secret").await.query()["code"].clone();

    let (status, body) = exchange(
        &app.url(""),
        &client_id,
        &code,
        "wrong-verifier-wrong-verifier-wrong-verifier",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    let code = page.query()["code"].clone();
    let (status, first) = exchange(&app.url(""), &client_id, &code, VERIFIER).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.me(access).await.status(), 200);

    let (status, again) = exchange(&app.url(""), &client_id, &code, VERIFIER).await;
    assert_eq!(status, 400);
    assert_eq!(again["error"], "invalid_grant");
    assert_eq!(
        app.me(access).await.status(),
        401,
        "the first exchange's tokens die"
    );
    let refresh = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refresh.status(), 400);
}

#[tokio::test]
async fn an_expired_code_and_another_clients_code_are_refused() {
    use sea_orm::{EntityTrait, QueryFilter};
    let app = spawn_app().await;
    let client_id = first_party(&app).await;
    let admin = app.token("johndoe", "secret").await;
    let (other, _) = register(
        &app.url(""),
        &admin,
        json!({"client_name": "Other", "redirect_uris": [REDIRECT], "confidential": false,
               "first_party": true}),
    )
    .await;
    let mut browser = Browser::new(&app.url(""));
    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    let code = browser.sign_in(&page, "johndoe", "secret").await.query()["code"].clone();
    let (status, body) = exchange(&app.url(""), &other, &code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let code = browser
        .get(&authorize_path(&client_id, "me", &[]))
        .await
        .query()["code"]
        .clone();
    gatehouse::db::authorization_code::Entity::update_many()
        .col_expr(
            gatehouse::db::authorization_code::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(1i64),
        )
        .filter(sea_orm::sea_query::Expr::val(1).eq(1))
        .exec(&app.db)
        .await
        .unwrap();
    let (status, body) = exchange(&app.url(""), &client_id, &code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_third_party_client_needs_consent_and_a_confidential_one_its_secret() {
    let app = spawn_app().await;
    let admin = app.token("johndoe", "secret").await;
    let (client_id, secret) = register(
        &app.url(""),
        &admin,
        json!({"client_name": "Other Corp", "redirect_uris": [REDIRECT], "confidential": true,
               "first_party": false}),
    )
    .await;
    let secret = secret.unwrap();
    let mut browser = Browser::new(&app.url(""));
    let page = browser
        .get(&authorize_path(&client_id, "me items", &[]))
        .await;
    let consent = browser.sign_in(&page, "johndoe", "secret").await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent
        .body
        .contains("Allow <strong>Other Corp</strong> access?"));
    assert!(consent.body.contains("Read items."));
    let denied = browser.submit(&consent, &[("decision", "deny")]).await;
    assert_eq!(denied.status, 303);
    assert_eq!(denied.query()["error"], "access_denied");
    assert_eq!(denied.query()["state"], "st4te");

    let consent = browser
        .get(&authorize_path(&client_id, "me items", &[]))
        .await;
    assert_eq!(consent.status, 200, "signed in: straight to consent");
    let allowed = browser.submit(&consent, &[("decision", "allow")]).await;
    let code = allowed.query()["code"].clone();

    let token = |auth: Option<(&str, &str)>, form_secret: Option<&str>| {
        let mut fields = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
        ];
        if let Some(s) = form_secret {
            fields.push(("client_id", client_id.clone()));
            fields.push(("client_secret", s.to_owned()));
        }
        let mut req = reqwest::Client::new().post(app.url("/token")).form(&fields);
        if let Some((id, s)) = auth {
            req = req.basic_auth(id, Some(s));
        }
        req.send()
    };
    let wrong = token(Some((&client_id, "wrong")), None).await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(wrong["error"], "invalid_client");
    let missing = token(None, None).await.unwrap();
    assert_eq!(missing.status(), 400, "no client_id at all");
    let ok = token(None, Some(&secret)).await.unwrap();
    assert_eq!(ok.status(), 200, "client_secret_post");
}

#[tokio::test]
async fn the_login_page_refuses_a_post_without_the_csrf_token_and_wrong_passwords() {
    let app = spawn_app().await;
    let client_id = first_party(&app).await;
    let mut browser = Browser::new(&app.url(""));
    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    let (action, fields) = page.form();
    let without: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "csrf_token")
        .cloned()
        .chain([
            ("username".into(), "johndoe".into()),
            ("password".into(), "secret".into()),
        ])
        .collect();
    let refused = browser.post(&action, &without).await;
    assert_eq!(refused.status, 400);
    assert!(refused.location.is_none());
    assert!(!browser.cookies.contains_key("gatehouse_session"));
    // Another browser's token does not do either.
    let mut other = Browser::new(&app.url(""));
    let refused = other
        .post(
            &action,
            &without
                .iter()
                .cloned()
                .chain([("csrf_token".into(), fields[0].1.clone())])
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(refused.status, 400);

    let wrong = browser.sign_in(&page, "johndoe", "wrong").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Incorrect username or password"));
    assert!(
        wrong.body.contains("value=\"johndoe\""),
        "the username is kept"
    );
}

#[tokio::test]
async fn a_password_change_ends_the_browser_session_and_logout_redirects_only_where_registered() {
    let app = spawn_app().await;
    let client_id = first_party(&app).await;
    let mut browser = Browser::new(&app.url(""));
    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    browser.sign_in(&page, "johndoe", "secret").await;
    assert_eq!(
        browser
            .get(&authorize_path(&client_id, "me", &[]))
            .await
            .status,
        302
    );

    let out = browser
        .get(&format!(
            "/logout?client_id={client_id}&post_logout_redirect_uri=https://evil.example.com/&state=s"
        ))
        .await;
    assert_eq!(out.status, 200, "an unregistered URI is not followed");
    assert_eq!(
        browser
            .get(&authorize_path(&client_id, "me", &[]))
            .await
            .status,
        200
    );

    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    browser.sign_in(&page, "johndoe", "secret").await;
    logs_out_to_the_registered_page(&mut browser, &client_id, &format!("client_id={client_id}"))
        .await;

    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    browser.sign_in(&page, "johndoe", "secret").await;
    let alice = app.token("johndoe", "secret").await;
    let changed = app
        .client
        .post(app.url("/users/me/password"))
        .bearer_auth(&alice)
        .json(&json!({"current_password": "secret", "new_password": "a much longer pass phrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204, "{}", changed.text().await.unwrap());
    assert_eq!(
        browser
            .get(&authorize_path(&client_id, "me", &[]))
            .await
            .status,
        200,
        "the password change ended the browser session"
    );
}

#[tokio::test]
async fn a_code_issued_on_one_replica_is_redeemed_on_the_other_once() {
    let db = TestDb::postgres().await;
    let a = ServingBinary::start(&db.url, &["serve", "--demo"], &[]).await;
    let b = ServingBinary::start(&db.url, &["serve", "--demo"], &[]).await;
    let client = reqwest::Client::new();
    let admin: Value = a
        .login(&client, "johndoe", "secret")
        .await
        .json()
        .await
        .unwrap();
    let (client_id, _) = register(
        &a.url,
        admin["access_token"].as_str().unwrap(),
        json!({"client_name": "App", "redirect_uris": [REDIRECT], "confidential": false,
               "first_party": true}),
    )
    .await;
    let mut browser = Browser::new(&a.url);
    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    let code = browser.sign_in(&page, "johndoe", "secret").await.query()["code"].clone();

    let (status, token) = exchange(&b.url, &client_id, &code, VERIFIER).await;
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().unwrap();
    let me = |url: String| {
        let client = client.clone();
        let access = access.to_owned();
        async move {
            client
                .get(format!("{url}/users/me/"))
                .bearer_auth(access)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(a.url.clone()).await, 200);
    let (status, again) = exchange(&a.url, &client_id, &code, VERIFIER).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(me(a.url.clone()).await, 401);
    assert_eq!(me(b.url.clone()).await, 401);
}

#[tokio::test]
async fn the_login_page_asks_a_user_with_totp_for_the_code() {
    let app = spawn_app().await;
    let client_id = first_party(&app).await;
    let (secret, recovery_codes, _) = crate::totp::enrolled(&app).await;
    let mut browser = Browser::new(&app.url(""));
    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    assert!(page.body.contains("name=\"otp\""));

    let asked = browser.sign_in(&page, "johndoe", "secret").await;
    assert_eq!(asked.status, 401);
    assert!(
        asked.body.contains("Second factor required"),
        "{}",
        asked.body
    );
    assert!(!browser.cookies.contains_key("gatehouse_session"));
    let wrong = browser
        .submit(
            &page,
            &[
                ("username", "johndoe"),
                ("password", "secret"),
                ("otp", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Incorrect code"));

    // A code of the authenticator app (the confirmation spent this step's: the next
    // step's is accepted too), or a recovery code; each works once.
    let otp = crate::totp::code(&secret, 1);
    let done = browser
        .submit(
            &page,
            &[
                ("username", "johndoe"),
                ("password", "secret"),
                ("otp", &otp),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (status, token) = exchange(&app.url(""), &client_id, &done.query()["code"], VERIFIER).await;
    assert_eq!(status, 200, "{token}");
    let claims = segment(token["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));

    let mut other = Browser::new(&app.url(""));
    let page = other.get(&authorize_path(&client_id, "me", &[])).await;
    let replayed = other
        .submit(
            &page,
            &[
                ("username", "johndoe"),
                ("password", "secret"),
                ("otp", &otp),
            ],
        )
        .await;
    assert_eq!(replayed.status, 401, "a code is never accepted twice");
    let recovered = other
        .submit(
            &page,
            &[
                ("username", "johndoe"),
                ("password", "secret"),
                ("otp", &recovery_codes[0]),
            ],
        )
        .await;
    assert_eq!(recovered.status, 303, "{}", recovered.body);
}

#[tokio::test]
async fn the_login_page_and_the_token_endpoint_share_the_failed_login_limits() {
    let app = spawn_app_with(|s| s.max_failed_logins_per_account = 3).await;
    let client_id = first_party(&app).await;
    let mut browser = Browser::new(&app.url(""));
    let page = browser.get(&authorize_path(&client_id, "me", &[])).await;
    // Two failures on the page, one at /token: the account's limit is reached.
    for _ in 0..2 {
        assert_eq!(browser.sign_in(&page, "johndoe", "wrong").await.status, 401);
    }
    assert_eq!(app.login("johndoe", "wrong").await.status(), 401);
    let limited = browser.sign_in(&page, "johndoe", "secret").await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.body.contains("Too many failed sign-ins"));
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    assert!(!browser.cookies.contains_key("gatehouse_session"));
    assert_eq!(app.login("johndoe", "secret").await.status(), 429);
}
