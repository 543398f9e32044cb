//! Email verification (SPEC §10): the link's page never spends the token, the button (or
//! an API client) does; new addresses on every path; unique addresses; verified logins.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    helpers::{parts, segment},
    signup::sign_up,
    smtp_sink::{app_mailing_to, header, token_in, SmtpSink},
};

const STRONG: &str = "correct horse battery staple";

async fn signed_up_carol(app: &crate::helpers::TestApp, sink: &SmtpSink) -> String {
    let body = json!({"username": "carol", "email": "carol@example.com", "password": STRONG});
    assert_eq!(sign_up(&app.client, &app.address, body).await.0, 201);
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    token_in(mails.last().unwrap(), "/verify-email")
}

/// The user `username` as the admin API shows it, asked with `admin`'s bearer token.
pub async fn shown_to_admin(app: &crate::helpers::TestApp, admin: &str, username: &str) -> Value {
    let resp = app
        .get(
            &format!("/admin/users/{username}"),
            Some(&format!("Bearer {admin}")),
        )
        .await;
    parts(resp, &[]).await.1
}

async fn page(
    app: &crate::helpers::TestApp,
    method: reqwest::Method,
    path: &str,
) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn opening_the_link_any_number_of_times_never_spends_the_token() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let token = signed_up_carol(&app, &sink).await;
    let path = format!("/verify-email?token={token}");
    // A mail scanner's GETs and HEADs, then the person's own GET.
    for method in [
        reqwest::Method::HEAD,
        reqwest::Method::GET,
        reqwest::Method::GET,
    ] {
        let resp = page(&app, method.clone(), &path).await;
        assert_eq!(resp.status(), 200, "{method}");
        let headers = resp.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.ends_with("; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"));
        if method == reqwest::Method::GET {
            let html = resp.text().await.unwrap();
            assert!(html.contains("<form method=\"post\">"), "{html}");
            assert!(
                html.contains(&format!("name=\"token\" value=\"{token}\"")),
                "{html}"
            );
            assert!(html.contains("carol@example.com"));
            assert!(!html.contains("<script"), "{html}");
        }
    }
    let admin = app.token("johndoe", "secret").await;
    assert_eq!(
        shown_to_admin(&app, &admin, "carol").await["email_verified"],
        json!(false)
    );
    // The page's button: a form post, answered with a page.
    let pressed = app
        .post_form("/verify-email", &[("token", token.as_str())])
        .await;
    assert_eq!(pressed.status(), 200);
    assert_eq!(
        pressed.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(pressed.headers()["cache-control"], "no-store");
    let html = pressed.text().await.unwrap();
    assert!(html.contains("Your address is verified"), "{html}");
    assert_eq!(
        shown_to_admin(&app, &admin, "carol").await["email_verified"],
        json!(true)
    );
    // Spent: the page and both posts now say so.
    let again = page(&app, reqwest::Method::GET, &path).await;
    assert_eq!(again.status(), 400);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("This link is invalid or has expired"));
    let form_again = app
        .post_form("/verify-email", &[("token", token.as_str())])
        .await;
    assert_eq!(form_again.status(), 400);
    let json_again = app
        .client
        .post(app.url("/verify-email"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts(json_again, &[]).await,
        (400, json!({"detail": "Invalid or expired token"}), vec![])
    );
}

#[tokio::test]
async fn unknown_malformed_and_missing_tokens_are_invalid_links() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    for path in [
        "/verify-email?token=nope",
        "/verify-email",
        "/reset-password?token=nope",
        "/reset-password?token=",
    ] {
        let resp = page(&app, reqwest::Method::GET, path).await;
        assert_eq!(resp.status(), 400, "{path}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert!(resp
            .text()
            .await
            .unwrap()
            .contains("This link is invalid or has expired"));
    }
    let resp = app
        .client
        .post(app.url("/verify-email"))
        .json(&json!({"token": "x".repeat(128)}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts(resp, &[]).await,
        (400, json!({"detail": "Invalid or expired token"}), vec![])
    );
    let resp = app
        .client
        .post(app.url("/verify-email"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts(resp, &[]).await,
        (
            422,
            json!({"detail": [{"type": "missing", "loc": ["body", "token"], "msg": "Field required", "input": null}]}),
            vec![]
        )
    );
}

#[tokio::test]
async fn a_new_address_from_patch_users_me_is_unverified_and_mailed_and_must_be_free() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let token = signed_up_carol(&app, &sink).await;
    let verify = app
        .client
        .post(app.url("/verify-email"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(verify.status(), 200);
    let bearer = format!("Bearer {}", app.token("carol", STRONG).await);
    let patch = |body: Value| {
        app.client
            .patch(app.url("/users/me/"))
            .header("Authorization", bearer.clone())
            .json(&body)
            .send()
    };
    // Another user's address, in any case: refused, nothing changes, no mail.
    for taken in ["johndoe@example.com", "JOHNDOE@example.com"] {
        assert_eq!(
            parts(patch(json!({"email": taken})).await.unwrap(), &[]).await,
            (400, json!({"detail": "Email already registered"}), vec![]),
            "{taken}"
        );
    }
    // The same address in another case is no new address: still verified, no mail.
    let same = patch(json!({"email": "Carol@Example.com"})).await.unwrap();
    assert_eq!(same.status(), 200);
    let admin = app.token("johndoe", "secret").await;
    assert_eq!(
        shown_to_admin(&app, &admin, "carol").await["email_verified"],
        json!(true)
    );
    // A new one: unverified, and a mail to it.
    assert_eq!(
        parts(
            patch(json!({"email": "carol@new.example.com"}))
                .await
                .unwrap(),
            &[]
        )
        .await,
        (
            200,
            json!({"username": "carol", "email": "carol@new.example.com", "full_name": null,
                   "disabled": false}),
            vec![]
        )
    );
    assert_eq!(
        shown_to_admin(&app, &admin, "carol").await["email_verified"],
        json!(false)
    );
    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        mails.len(),
        2,
        "no mail for the refused or unchanged addresses"
    );
    assert_eq!(header(&mails[1], "To"), Some("carol@new.example.com"));
    // The old address's link is dead: it proves an address the user no longer has.
    let new_token = token_in(&mails[1], "/verify-email");
    let resp = app
        .client
        .post(app.url("/verify-email"))
        .json(&json!({"token": new_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        shown_to_admin(&app, &admin, "carol").await["email_verified"],
        json!(true)
    );
}

#[tokio::test]
async fn the_admin_api_mails_a_created_users_address_and_keeps_addresses_unique() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let admin = format!("Bearer {}", app.token("johndoe", "secret").await);
    let send = |method: reqwest::Method, path: &str, body: Value| {
        app.client
            .request(method, app.url(path))
            .header("Authorization", admin.clone())
            .json(&body)
            .send()
    };
    let created = send(
        reqwest::Method::POST,
        "/admin/users/",
        json!({"username": "dave", "password": STRONG, "email": "dave@example.com"}),
    )
    .await
    .unwrap();
    assert_eq!(
        parts(created, &[]).await,
        (
            201,
            json!({"username": "dave", "email": "dave@example.com", "full_name": null,
                   "disabled": false, "scopes": ["me", "items"], "totp_enabled": false,
                   "email_verified": false}),
            vec![]
        )
    );
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(header(&mails[0], "To"), Some("dave@example.com"));
    let taken = send(
        reqwest::Method::POST,
        "/admin/users/",
        json!({"username": "erin", "password": STRONG, "email": "DAVE@example.com"}),
    )
    .await
    .unwrap();
    assert_eq!(
        parts(taken, &[]).await,
        (409, json!({"detail": "Email already registered"}), vec![])
    );
    let changed = send(
        reqwest::Method::PATCH,
        "/admin/users/alice",
        json!({"email": "Dave@Example.COM"}),
    )
    .await
    .unwrap();
    assert_eq!(
        parts(changed, &[]).await,
        (409, json!({"detail": "Email already registered"}), vec![])
    );
    // The admin API's password rules are the policy's.
    let weak = send(
        reqwest::Method::PATCH,
        "/admin/users/dave",
        json!({"password": "12345678"}),
    )
    .await
    .unwrap();
    assert_eq!(
        parts(weak, &[]).await.1["detail"][0]["loc"],
        json!(["body", "password"])
    );
}

#[tokio::test]
async fn request_verify_token_answers_alike_and_mails_only_an_unverified_account() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    signed_up_carol(&app, &sink).await;
    let expected = (
        202,
        json!({"message": "If an account has this address, a mail is on its way to it."}),
        vec![],
    );
    // Unknown, verified (the demo's johndoe), disabled (alice), and carol's, in any case.
    for email in [
        "nobody@example.com",
        "johndoe@example.com",
        "alice@example.com",
        "CAROL@example.com",
    ] {
        let resp = app
            .client
            .post(app.url("/request-verify-token"))
            .json(&json!({"email": email}))
            .send()
            .await
            .unwrap();
        assert_eq!(parts(resp, &[]).await, expected, "{email}");
    }
    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages().len(),
        2,
        "the signup's mail and carol's new one"
    );
    assert_eq!(header(&mails[1], "To"), Some("carol@example.com"));
    // Both links work until one is used.
    let second = token_in(&mails[1], "/verify-email");
    let resp = app
        .client
        .post(app.url("/verify-email"))
        .json(&json!({"token": second}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn with_require_verified_email_an_unverified_user_gets_400_only_after_the_right_password() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |s| s.require_verified_email = true).await;
    let token = signed_up_carol(&app, &sink).await;
    assert_eq!(
        parts(
            app.login("carol", "wrong password").await,
            &["www-authenticate"]
        )
        .await,
        (
            401,
            json!({"detail": "Incorrect username or password"}),
            vec![Some("Bearer".to_owned())]
        )
    );
    assert_eq!(
        parts(app.login("carol", STRONG).await, &["www-authenticate"]).await,
        (400, json!({"detail": "Email not verified"}), vec![None])
    );
    // The demo users count as verified.
    assert_eq!(app.login("johndoe", "secret").await.status(), 200);
    let resp = app
        .client
        .post(app.url("/verify-email"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.login("carol", STRONG).await.status(), 200);
}

#[tokio::test]
async fn access_tokens_carry_email_verified_as_it_was_at_issue() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let token = signed_up_carol(&app, &sink).await;
    let before = app.token("carol", STRONG).await;
    assert_eq!(segment(&before, 1)["email_verified"], json!(false));
    let resp = app
        .client
        .post(app.url("/verify-email"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let after = app.token("carol", STRONG).await;
    assert_eq!(segment(&after, 1)["email_verified"], json!(true));
    assert_eq!(
        segment(&app.token("johndoe", "secret").await, 1)["email_verified"],
        json!(true)
    );
}
