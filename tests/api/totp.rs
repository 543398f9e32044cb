//! The second factor (SPEC §11) through HTTP: enrolment, confirmation, logins with and
//! without `otp`, replay, the ±1 step window, recovery codes, the failed-login limit,
//! "recent sign-in" (RFC 9470), the admin reset and `REQUIRE_MFA_FOR_ADMIN`.
//!
//! Codes are computed with totp-rs, an implementation nobody on this project wrote.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::helpers::{
    gatehouse_cli, now, parts, segment, spawn_app, spawn_app_with, ServingBinary, TestApp, TestDb,
};

/// The code of the step `offset_steps` away from now, for the base32 `secret`.
pub(crate) fn code(secret: &str, offset_steps: i64) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new());
    let at = now() + offset_steps * 30;
    totp.generate(u64::try_from(at).unwrap())
}

/// Waits, if need be, until the current 30-second step has at least 8 s left, so that a
/// code computed now is checked in the same step.
async fn early_in_a_step() {
    let into = now() % 30;
    if into > 22 {
        tokio::time::sleep(Duration::from_secs(u64::try_from(31 - into).unwrap())).await;
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, Vec<Option<String>>) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    parts(
        req.send().await.unwrap(),
        &["www-authenticate", "cache-control"],
    )
    .await
}

pub(crate) async fn login_with(
    app: &TestApp,
    user: &str,
    password: &str,
    otp: Option<&str>,
) -> reqwest::Response {
    let mut fields = vec![("username", user), ("password", password)];
    if let Some(otp) = otp {
        fields.push(("otp", otp));
    }
    app.post_form("/token", &fields).await
}

async fn access_token(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// johndoe with TOTP on: the secret, the recovery codes, and the confirming session's
/// token (signed in with the password only).
pub(crate) async fn enrolled(app: &TestApp) -> (String, Vec<String>, String) {
    let token = app.token("johndoe", "secret").await;
    let (status, enrolment, _) = send(app, Method::POST, "/users/me/totp", &token, None).await;
    assert_eq!(status, 200, "{enrolment}");
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    early_in_a_step().await;
    let confirm = json!({"code": code(&secret, 0)});
    let (status, body, _) = send(
        app,
        Method::POST,
        "/users/me/totp/confirm",
        &token,
        Some(confirm),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes, token)
}

#[tokio::test]
async fn enrolment_gives_a_secret_a_uri_and_a_qr_code_and_a_confirmation_turns_totp_on() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    let other = app.token("johndoe", "secret").await;
    let status = |token: String| {
        let app = &app;
        async move { send(app, Method::GET, "/users/me/totp", &token, None).await }
    };
    assert_eq!(
        status(token.clone()).await,
        (
            200,
            json!({"enabled": false, "recovery_codes_left": 0}),
            vec![None, None]
        )
    );

    let (code_status, enrolment, headers) =
        send(&app, Method::POST, "/users/me/totp", &token, None).await;
    assert_eq!(code_status, 200);
    assert_eq!(
        headers[1].as_deref(),
        Some("no-store"),
        "a secret is never cached"
    );
    let secret = enrolment["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits, base32 without padding");
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    let parsed = TOTP::from_url(uri).unwrap();
    assert_eq!(
        (
            parsed.get_secret_base32(),
            parsed.issuer.as_deref(),
            parsed.account_name.as_str()
        ),
        (secret.to_owned(), Some("gatehouse"), "johndoe")
    );
    assert_eq!((parsed.digits, parsed.step, parsed.skew), (6, 30, 1));
    let svg = enrolment["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && !svg.contains("href"), "{svg}");
    assert_eq!(
        status(token.clone()).await.1,
        json!({"enabled": false, "recovery_codes_left": 0}),
        "not on until confirmed"
    );

    let wrong = json!({"code": "000000"});
    assert_eq!(
        send(
            &app,
            Method::POST,
            "/users/me/totp/confirm",
            &token,
            Some(wrong)
        )
        .await,
        (400, json!({"detail": "Incorrect code"}), vec![None, None])
    );
    early_in_a_step().await;
    let right = json!({"code": code(secret, 0)});
    let (code_status, body, headers) = send(
        &app,
        Method::POST,
        "/users/me/totp/confirm",
        &token,
        Some(right),
    )
    .await;
    assert_eq!(code_status, 200);
    assert_eq!(headers[1].as_deref(), Some("no-store"));
    let codes = body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    for code in codes {
        let code = code.as_str().unwrap();
        assert_eq!(code.len(), 11, "{code}");
        assert_eq!(&code[5..6], "-");
    }
    assert_eq!(
        status(token.clone()).await.1,
        json!({"enabled": true, "recovery_codes_left": 10})
    );
    assert_eq!(
        app.me(&token).await.status(),
        200,
        "the confirming session goes on"
    );
    assert_eq!(
        app.me(&other).await.status(),
        401,
        "the user's other sessions end"
    );
}

#[tokio::test]
async fn a_user_with_totp_logs_in_with_a_code_and_refreshes_keep_how_they_signed_in() {
    let app = spawn_app().await;
    let (secret, _, _) = enrolled(&app).await;

    let (status, body, headers) = parts(
        login_with(&app, "johndoe", "secret", None).await,
        &["www-authenticate"],
    )
    .await;
    assert_eq!(
        (status, body, headers),
        (
            401,
            json!({"detail": "Second factor required"}),
            vec![Some("Bearer".to_owned())]
        )
    );
    let (status, body, _) = parts(login_with(&app, "johndoe", "secret", Some("")).await, &[]).await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Second factor required"}))
    );
    let (status, body, headers) = parts(
        login_with(&app, "johndoe", "secret", Some("123456")).await,
        &["www-authenticate"],
    )
    .await;
    assert_eq!(
        (status, body, headers),
        (
            401,
            json!({"detail": "Incorrect code"}),
            vec![Some("Bearer".to_owned())]
        )
    );
    // The password is checked first: a wrong one with a right code is a wrong password.
    let (status, body, _) = parts(
        login_with(&app, "johndoe", "wrong", Some(&code(&secret, 1))).await,
        &[],
    )
    .await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Incorrect username or password"}))
    );

    let before = now();
    let resp = login_with(&app, "johndoe", "secret", Some(&code(&secret, 1))).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let claims = segment(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!((before..=now()).contains(&auth_time));
    assert_eq!(
        app.me(body["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refreshed = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let claims = segment(refreshed["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        claims["amr"],
        json!(["pwd", "otp"]),
        "a refresh keeps the factors"
    );
    assert_eq!(
        claims["auth_time"].as_i64(),
        Some(auth_time),
        "and when the user signed in"
    );
    assert!(claims["iat"].as_i64().unwrap() > auth_time);

    // Users without TOTP are as before: `otp` is ignored.
    let resp = login_with(&app, "alice", "secret2", Some("123456")).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        segment(body["access_token"].as_str().unwrap(), 1)["amr"],
        json!(["pwd"])
    );
}

#[tokio::test]
async fn a_code_is_accepted_in_its_step_plus_or_minus_one_and_never_twice() {
    let app = spawn_app().await;
    let (secret, _, _) = enrolled(&app).await;
    // The confirmation spent this step's code.
    early_in_a_step().await;
    let now_code = code(&secret, 0);
    let (status, body, _) = parts(
        login_with(&app, "johndoe", "secret", Some(&now_code)).await,
        &[],
    )
    .await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Incorrect code"})),
        "spent by the confirmation"
    );
    // Two steps ahead is outside the window.
    let far = code(&secret, 2);
    assert_eq!(
        login_with(&app, "johndoe", "secret", Some(&far))
            .await
            .status(),
        401
    );
    // One step ahead is inside, once.
    let next = code(&secret, 1);
    assert_eq!(
        login_with(&app, "johndoe", "secret", Some(&next))
            .await
            .status(),
        200
    );
    assert_eq!(
        login_with(&app, "johndoe", "secret", Some(&next))
            .await
            .status(),
        401,
        "replayed"
    );
    // And no earlier code is accepted after a later one.
    assert_eq!(
        login_with(&app, "johndoe", "secret", Some(&now_code))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn a_code_of_the_step_before_is_accepted() {
    let app = spawn_app().await;
    let token = app.token("johndoe", "secret").await;
    let (_, enrolment, _) = send(&app, Method::POST, "/users/me/totp", &token, None).await;
    let secret = enrolment["secret"].as_str().unwrap();
    early_in_a_step().await;
    let previous = json!({"code": code(secret, -1)});
    let (status, _, _) = send(
        &app,
        Method::POST,
        "/users/me/totp/confirm",
        &token,
        Some(previous),
    )
    .await;
    assert_eq!(status, 200, "the step before's code confirms");
    let two_back = code(secret, -2);
    assert_eq!(
        login_with(&app, "johndoe", "secret", Some(&two_back))
            .await
            .status(),
        401
    );
    assert_eq!(
        login_with(&app, "johndoe", "secret", Some(&code(secret, 0)))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn each_recovery_code_works_once_however_it_is_typed() {
    let app = spawn_app().await;
    let (_, codes, _) = enrolled(&app).await;
    let typed = codes[0].to_uppercase().replace('-', " ");
    let resp = login_with(&app, "johndoe", "secret", Some(&typed)).await;
    let token = access_token(resp).await;
    assert_eq!(segment(&token, 1)["amr"], json!(["pwd", "otp"]));
    let (status, body, _) = parts(
        login_with(&app, "johndoe", "secret", Some(&codes[0])).await,
        &[],
    )
    .await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Incorrect code"})),
        "used"
    );
    assert_eq!(
        send(&app, Method::GET, "/users/me/totp", &token, None)
            .await
            .1,
        json!({"enabled": true, "recovery_codes_left": 9})
    );
    let token = access_token(login_with(&app, "johndoe", "secret", Some(&codes[1])).await).await;
    assert_eq!(app.me(&token).await.status(), 200);
}

#[tokio::test]
async fn guessing_codes_meets_the_failed_login_limit() {
    let app = spawn_app_with(|s| s.max_failed_logins_per_account = 3).await;
    let (secret, _, _) = enrolled(&app).await;
    for guess in ["111111", "222222", "333333"] {
        let (status, body, _) = parts(
            login_with(&app, "johndoe", "secret", Some(guess)).await,
            &[],
        )
        .await;
        assert_eq!(
            (status, body),
            (401, json!({"detail": "Incorrect code"})),
            "{guess}"
        );
    }
    let (status, body, headers) = parts(
        login_with(&app, "johndoe", "secret", Some(&code(&secret, 1))).await,
        &["retry-after"],
    )
    .await;
    assert_eq!(
        (status, body),
        (
            429,
            json!({"detail": "Too many failed attempts, retry later"})
        )
    );
    assert!(headers[0].is_some());
}

/// The challenge of RFC 9470 §3.
fn step_up(max_age: Option<u64>, factor: bool) -> String {
    let description = if factor {
        "A recent sign-in with the second factor is required"
    } else {
        "A recent sign-in is required"
    };
    let mut challenge = format!(
        r#"Bearer error="insufficient_user_authentication", error_description="{description}""#
    );
    if factor {
        challenge.push_str(r#", acr_values="mfa""#);
    }
    if let Some(max_age) = max_age {
        challenge.push_str(&format!(", max_age={max_age}"));
    }
    challenge
}

#[tokio::test]
async fn changing_the_factor_needs_a_recent_sign_in_with_it() {
    let app = spawn_app_with(|s| s.reauth_max_age_secs = 2).await;
    let old = app.token("johndoe", "secret").await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, body, headers) = send(&app, Method::POST, "/users/me/totp", &old, None).await;
    assert_eq!(
        (status, body, headers[0].clone()),
        (
            401,
            json!({"detail": "A recent sign-in is required"}),
            Some(step_up(Some(2), false))
        )
    );

    let (secret, _, password_only) = enrolled(&app).await;
    // With TOTP on, a sign-in with the password alone, however fresh, is not enough to
    // enrol another factor, turn it off or get new codes.
    for (method, path) in [
        (Method::POST, "/users/me/totp"),
        (Method::DELETE, "/users/me/totp"),
        (Method::POST, "/users/me/totp/recovery-codes"),
    ] {
        let (status, body, headers) = send(&app, method, path, &password_only, None).await;
        assert_eq!(
            (status, body, headers[0].clone()),
            (
                401,
                json!({"detail": "A recent sign-in with the second factor is required"}),
                Some(step_up(Some(2), true))
            ),
            "{path}"
        );
    }
    let with_factor =
        access_token(login_with(&app, "johndoe", "secret", Some(&code(&secret, 1))).await).await;
    let (status, body, _) = send(
        &app,
        Method::POST,
        "/users/me/totp/recovery-codes",
        &with_factor,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 10);
    let (status, _, _) = send(&app, Method::DELETE, "/users/me/totp", &with_factor, None).await;
    assert_eq!(status, 204);
    assert_eq!(
        send(&app, Method::GET, "/users/me/totp", &with_factor, None)
            .await
            .1,
        json!({"enabled": false, "recovery_codes_left": 0})
    );
    assert_eq!(
        login_with(&app, "johndoe", "secret", None).await.status(),
        200
    );
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_set() {
    let app = spawn_app().await;
    let (secret, old_codes, _) = enrolled(&app).await;
    let token =
        access_token(login_with(&app, "johndoe", "secret", Some(&code(&secret, 1))).await).await;
    let (status, body, _) = send(
        &app,
        Method::POST,
        "/users/me/totp/recovery-codes",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let new_code = body["recovery_codes"][0].as_str().unwrap().to_owned();
    assert_eq!(
        login_with(&app, "johndoe", "secret", Some(&old_codes[0]))
            .await
            .status(),
        401
    );
    assert_eq!(
        login_with(&app, "johndoe", "secret", Some(&new_code))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_admin_reset_turns_totp_off_and_ends_the_users_sessions() {
    let app = spawn_app().await;
    let admin = app.token("johndoe", "secret").await;
    let add = json!({"username": "carol", "password": "carol-password-1", "scopes": ["me"]});
    assert_eq!(
        send(&app, Method::POST, "/admin/users/", &admin, Some(add))
            .await
            .0,
        201
    );
    let carol = app.token("carol", "carol-password-1").await;
    let (_, enrolment, _) = send(&app, Method::POST, "/users/me/totp", &carol, None).await;
    early_in_a_step().await;
    let confirm = json!({"code": code(enrolment["secret"].as_str().unwrap(), 0)});
    assert_eq!(
        send(
            &app,
            Method::POST,
            "/users/me/totp/confirm",
            &carol,
            Some(confirm)
        )
        .await
        .0,
        200
    );
    let (_, shown, _) = send(&app, Method::GET, "/admin/users/carol", &admin, None).await;
    assert_eq!(shown["totp_enabled"], json!(true));
    assert_eq!(
        login_with(&app, "carol", "carol-password-1", None)
            .await
            .status(),
        401
    );

    let (status, body, _) = send(
        &app,
        Method::DELETE,
        "/admin/users/carol/totp",
        &admin,
        None,
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(app.me(&carol).await.status(), 401, "her sessions ended");
    let (_, shown, _) = send(&app, Method::GET, "/admin/users/carol", &admin, None).await;
    assert_eq!(shown["totp_enabled"], json!(false));
    assert_eq!(
        login_with(&app, "carol", "carol-password-1", None)
            .await
            .status(),
        200
    );
    let (status, body, _) = send(
        &app,
        Method::DELETE,
        "/admin/users/nobody/totp",
        &admin,
        None,
    )
    .await;
    assert_eq!((status, body), (404, json!({"detail": "User not found"})));
}

#[tokio::test]
async fn the_cli_resets_a_users_totp() {
    let app = spawn_app().await;
    let (_, _, token) = enrolled(&app).await;
    let out = gatehouse_cli(
        &app.settings.database_url,
        &["user", "totp-reset", "johndoe"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.me(&token).await.status(), 401);
    assert_eq!(
        login_with(&app, "johndoe", "secret", None).await.status(),
        200
    );
    let out = gatehouse_cli(
        &app.settings.database_url,
        &["user", "totp-reset", "nobody"],
        "",
    );
    assert!(!out.status.success());
}

#[tokio::test]
async fn with_require_mfa_for_admin_every_admin_operation_needs_the_factor() {
    let app = spawn_app_with(|s| s.require_mfa_for_admin = true).await;
    let password_only = app.token("johndoe", "secret").await;
    let (status, body, headers) =
        send(&app, Method::GET, "/admin/users/", &password_only, None).await;
    assert_eq!(
        (status, body, headers[0].clone()),
        (
            401,
            json!({"detail": "A recent sign-in with the second factor is required"}),
            Some(step_up(None, true))
        )
    );
    assert_eq!(
        app.me(&password_only).await.status(),
        200,
        "other operations are as before"
    );
    let (secret, _, _) = enrolled(&app).await;
    let with_factor =
        access_token(login_with(&app, "johndoe", "secret", Some(&code(&secret, 1))).await).await;
    assert_eq!(
        send(&app, Method::GET, "/admin/users/", &with_factor, None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn on_two_postgres_replicas_a_code_is_accepted_once() {
    let db = TestDb::postgres().await;
    let env = [("MAX_FAILED_LOGINS_PER_ACCOUNT", "1000")];
    let a = ServingBinary::start(&db.url, &["serve", "--demo"], &env).await;
    let b = ServingBinary::start(&db.url, &["serve", "--demo"], &env).await;
    let client = reqwest::Client::new();
    let login = |server: &ServingBinary, otp: Option<String>| {
        let mut fields = vec![
            ("username", "johndoe".to_owned()),
            ("password", "secret".to_owned()),
        ];
        if let Some(otp) = otp {
            fields.push(("otp", otp));
        }
        client.post(server.at("/token")).form(&fields).send()
    };
    let token: Value = login(&a, None).await.unwrap().json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let enrolment: Value = client
        .post(a.at("/users/me/totp"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = enrolment["secret"].as_str().unwrap();
    early_in_a_step().await;
    let confirmed = client
        .post(b.at("/users/me/totp/confirm"))
        .bearer_auth(token)
        .json(&json!({"code": code(secret, 0)}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        confirmed.status(),
        200,
        "an enrolment on A is confirmed on B"
    );
    let next = code(secret, 1);
    let (on_a, on_b) = tokio::join!(login(&a, Some(next.clone())), login(&b, Some(next.clone())));
    let mut statuses = [
        on_a.unwrap().status().as_u16(),
        on_b.unwrap().status().as_u16(),
    ];
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 401],
        "one code, one login, on either replica"
    );
    assert_eq!(login(&b, Some(next)).await.unwrap().status(), 401);
}
