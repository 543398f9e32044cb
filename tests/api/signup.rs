//! `POST /users/`: signup, its mail, its limits (SPEC §10, "Signup").

use std::time::Duration;

use gatehouse::config::SignupMode;
use serde_json::{json, Value};

use crate::{
    helpers::{parts, TestDb},
    smtp_sink::{
        app_mailing_to, bodies, header, start_without_demo, token_in, SmtpSink, PUBLIC_URL,
    },
};

const STRONG: &str = "correct horse battery staple";

pub async fn sign_up(
    client: &reqwest::Client,
    address: &str,
    body: Value,
) -> (u16, Value, Vec<Option<String>>) {
    let resp = client
        .post(format!("{address}/users/"))
        .json(&body)
        .send()
        .await
        .unwrap();
    parts(resp, &["retry-after"]).await
}

fn carol() -> Value {
    json!({"username": "carol", "email": "Carol@Example.com", "password": STRONG,
           "full_name": "Carol Cooper"})
}

#[tokio::test]
async fn signup_creates_a_user_holding_me_items_and_mails_a_verification_link() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    assert_eq!(
        sign_up(&app.client, &app.address, carol()).await,
        (
            201,
            json!({"username": "carol", "email": "Carol@Example.com",
                   "full_name": "Carol Cooper", "disabled": false}),
            vec![None]
        )
    );
    let mail = &sink.wait_for(1, Duration::from_secs(10)).await[0];
    assert_eq!(header(mail, "To"), Some("Carol@Example.com"));
    assert_eq!(
        header(mail, "From"),
        Some("gatehouse <noreply@accounts.example.com>")
    );
    assert_eq!(header(mail, "Subject"), Some("Confirm your email address"));
    assert!(header(mail, "Date").is_some(), "{mail}");
    let message_id = header(mail, "Message-ID").unwrap();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@accounts.example.com>"),
        "{message_id}"
    );
    let (text, html) = bodies(mail);
    let token = token_in(mail, "/verify-email");
    let link = format!("{PUBLIC_URL}/verify-email?token={token}");
    assert!(text.contains(&format!("\r\n{link}\r\n")), "{text}");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(text.contains("Hello carol,"), "{text}");

    // The new user holds `me items` (never admin), and logs in (verification not required).
    let tokens = app.login_with_scope("carol", STRONG, "").await;
    assert_eq!(tokens["scope"], "me items");
    let admin = app.token("johndoe", "secret").await;
    let shown = app
        .get("/admin/users/carol", Some(&format!("Bearer {admin}")))
        .await;
    assert_eq!(parts(shown, &[]).await.1["email_verified"], json!(false));
    // The link's token verifies the address.
    let verified = app
        .client
        .post(app.url("/verify-email"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts(verified, &[]).await,
        (
            200,
            json!({"username": "carol", "email": "Carol@Example.com",
                   "full_name": "Carol Cooper", "disabled": false}),
            vec![]
        )
    );
    let shown = app
        .get("/admin/users/carol", Some(&format!("Bearer {admin}")))
        .await;
    assert_eq!(parts(shown, &[]).await.1["email_verified"], json!(true));
}

#[tokio::test]
async fn signup_closed_answers_403_and_creates_nobody() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |s| s.signup = Some(SignupMode::Closed)).await;
    assert_eq!(
        sign_up(&app.client, &app.address, carol()).await,
        (403, json!({"detail": "Signup is closed"}), vec![None])
    );
    assert_eq!(app.login("carol", STRONG).await.status(), 401);
}

#[tokio::test]
async fn signup_is_closed_unless_opened_and_needs_mail() {
    let test_db = TestDb::new().await;
    // Not --demo, no SIGNUP: closed.
    let (closed, _server) = start_without_demo(test_db.settings()).await;
    let client = reqwest::Client::new();
    assert_eq!(
        sign_up(&client, &closed, carol()).await,
        (403, json!({"detail": "Signup is closed"}), vec![None])
    );
    // Open, but no SMTP_URL and not --demo: no mail can go out.
    let mut settings = test_db.settings();
    settings.signup = Some(SignupMode::Open);
    let (open, _server) = start_without_demo(settings).await;
    let resp = client
        .post(format!("{open}/users/"))
        .json(&carol())
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts(resp, &["retry-after"]).await,
        (
            503,
            json!({"detail": "Mail is not configured"}),
            vec![Some("3600".to_owned())]
        )
    );
    for path in ["/forgot-password", "/request-verify-token"] {
        let resp = client
            .post(format!("{open}{path}"))
            .json(&json!({"email": "johndoe@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            parts(resp, &[]).await,
            (503, json!({"detail": "Mail is not configured"}), vec![]),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_taken_username_or_address_is_already_registered_whatever_its_case() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    assert_eq!(sign_up(&app.client, &app.address, carol()).await.0, 201);
    let taken_name = json!({"username": "carol", "email": "other@example.com", "password": STRONG});
    assert_eq!(
        sign_up(&app.client, &app.address, taken_name).await,
        (
            400,
            json!({"detail": "Username already registered"}),
            vec![None]
        )
    );
    // A look-alike of a name is the name.
    let look_alike =
        json!({"username": "ｃａｒｏｌ", "email": "x@example.com", "password": STRONG});
    assert_eq!(
        sign_up(&app.client, &app.address, look_alike).await.1,
        json!({"detail": "Username already registered"})
    );
    for email in [
        "carol@example.com",
        "CAROL@EXAMPLE.COM",
        " carol@example.com ",
        "JohnDoe@Example.com",
    ] {
        let taken = json!({"username": "dave", "email": email, "password": STRONG});
        assert_eq!(
            sign_up(&app.client, &app.address, taken).await,
            (
                400,
                json!({"detail": "Email already registered"}),
                vec![None]
            ),
            "{email}"
        );
    }
    // Only the first signup's mail went out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn two_signups_racing_for_one_address_leave_one_user() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let signups = ["ann", "bob", "cy", "dee"].map(|name| {
        let (client, address) = (app.client.clone(), app.address.clone());
        let email = if name == "bob" {
            "SAME@example.com"
        } else {
            "same@example.com"
        };
        tokio::spawn(async move {
            sign_up(
                &client,
                &address,
                json!({"username": name, "email": email, "password": STRONG}),
            )
            .await
        })
    });
    let mut created = 0;
    for signup in signups {
        let (status, body, _) = signup.await.unwrap();
        match status {
            201 => created += 1,
            400 => assert_eq!(body, json!({"detail": "Email already registered"})),
            other => panic!("{other} {body}"),
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn the_password_policy_refuses_short_long_and_common_passwords_as_fastapi_422s() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let with = |password: &str| json!({"username": "carol", "email": "c@example.com", "password": password});
    assert_eq!(
        sign_up(&app.client, &app.address, with("short")).await.1,
        json!({"detail": [{"type": "string_too_short", "loc": ["body", "password"],
                           "msg": "String should have at least 8 characters",
                           "input": "**********", "ctx": {"min_length": 8}}]})
    );
    assert_eq!(
        sign_up(&app.client, &app.address, with("Password1")).await,
        (
            422,
            json!({"detail": [{"type": "value_error", "loc": ["body", "password"],
                   "msg": "Value error, this password is too common: it is among the first an attacker tries",
                   "input": null,
                   "ctx": {"error": "this password is too common: it is among the first an attacker tries"}}]}),
            vec![None]
        )
    );
    assert_eq!(
        sign_up(&app.client, &app.address, with(&"é".repeat(513)))
            .await
            .1,
        json!({"detail": [{"type": "string_too_long", "loc": ["body", "password"],
                           "msg": "String should have at most 1024 bytes",
                           "input": "**********", "ctx": {"max_length": 1024}}]})
    );
    // The minimum is a setting.
    let strict = app_mailing_to(&sink, |s| s.password_min_length = 20).await;
    assert_eq!(
        sign_up(&strict.client, &strict.address, with("nineteen characters"))
            .await
            .1["detail"][0]["ctx"],
        json!({"min_length": 20})
    );
    let bad_address = json!({"username": "carol", "email": "not an address", "password": STRONG});
    assert_eq!(
        sign_up(&app.client, &app.address, bad_address).await.1,
        json!({"detail": [{"type": "value_error", "loc": ["body", "email"],
                           "msg": "Value error, value is not a valid email address",
                           "input": null, "ctx": {"error": "value is not a valid email address"}}]})
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn signups_are_limited_per_client_address() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    for n in 0..10 {
        let body = json!({"username": format!("user{n}"), "email": format!("u{n}@example.com"),
                          "password": STRONG});
        assert_eq!(sign_up(&app.client, &app.address, body).await.0, 201, "{n}");
    }
    let (status, body, retry_after) = sign_up(
        &app.client,
        &app.address,
        json!({"username": "eleventh", "email": "u11@example.com", "password": STRONG}),
    )
    .await;
    assert_eq!(
        (status, body),
        (429, json!({"detail": "Too many signups, retry later"}))
    );
    let retry_after: u64 = retry_after[0].as_deref().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(app.login("eleventh", STRONG).await.status(), 401);
}
