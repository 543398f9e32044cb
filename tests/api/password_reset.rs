//! Password reset (SPEC §10): the token's rules, the mail, the page, enumeration and
//! timing of `/forgot-password`, the per-address cap.

use std::time::{Duration, Instant};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    helpers::{now, parts, TestApp},
    signup::sign_up,
    smtp_sink::{app_mailing_to, header, token_in, SmtpSink},
    verification::shown_to_admin,
};

const STRONG: &str = "correct horse battery staple";
const NEW: &str = "a brand new pass phrase";

async fn forgot(app: &TestApp, email: &str) -> (u16, Value, Vec<Option<String>>) {
    let resp = app
        .client
        .post(app.url("/forgot-password"))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    parts(resp, &["cache-control"]).await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> (u16, Value, Vec<Option<String>>) {
    let resp = app
        .client
        .post(app.url("/reset-password"))
        .json(&json!({"token": token, "password": password}))
        .send()
        .await
        .unwrap();
    parts(resp, &[]).await
}

/// carol, signed up (unverified), and the token of a reset mail sent to her.
async fn carol_with_reset_token(app: &TestApp, sink: &SmtpSink) -> String {
    let body = json!({"username": "carol", "email": "carol@example.com", "password": STRONG});
    assert_eq!(sign_up(&app.client, &app.address, body).await.0, 201);
    sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(forgot(app, "Carol@Example.com").await.0, 202);
    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(header(&mails[1], "Subject"), Some("Reset your password"));
    token_in(&mails[1], "/reset-password")
}

async fn column_values(app: &TestApp, sql: &str, column: &str) -> Vec<Option<String>> {
    let backend = app.db.get_database_backend();
    app.db
        .query_all(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<Option<String>>("", column).unwrap())
        .collect()
}

const PASSWORD_CHANGED: &str =
    "Password changed. Every session of the account has ended: sign in with the new password.";

#[tokio::test]
async fn a_reset_changes_the_password_ends_every_session_and_marks_the_address_verified() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let token = carol_with_reset_token(&app, &sink).await;
    // 256 random bits, base64url; only its SHA-256 is stored, and no mail text is kept
    // once delivered.
    assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
    let hashes = column_values(&app, "SELECT token_hash FROM email_tokens", "token_hash").await;
    assert!(hashes.contains(&Some(hex::encode(Sha256::digest(token.as_bytes())))));
    assert!(!hashes.contains(&Some(token.clone())));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = column_values(&app, "SELECT message FROM mail_outbox", "message").await;
    assert_eq!(kept, vec![None, None], "delivered mails keep no text");

    let before = app.login_with_scope("carol", STRONG, "").await;
    let access = before["access_token"].as_str().unwrap().to_owned();
    let refresh = before["refresh_token"].as_str().unwrap().to_owned();
    // The page shows the form and spends nothing, however often it is opened.
    for _ in 0..3 {
        let page = app
            .get(&format!("/reset-password?token={token}"), None)
            .await;
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["cache-control"], "no-store");
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        let html = page.text().await.unwrap();
        assert!(html.contains("<form method=\"post\">"), "{html}");
        assert!(html.contains(&format!("name=\"token\" value=\"{token}\"")));
        assert!(html.contains("type=\"password\" id=\"password\" name=\"password\""));
        assert!(html.contains("minlength=\"8\""));
    }
    assert_eq!(
        reset(&app, &token, NEW).await,
        (200, json!({"message": PASSWORD_CHANGED}), vec![])
    );
    // Every session and token of the user ended; the old password is gone.
    assert_eq!(app.me(&access).await.status(), 401);
    let refreshed = app
        .post_form(
            "/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(parts(refreshed, &[]).await.1["error"], "invalid_grant");
    assert_eq!(app.login("carol", STRONG).await.status(), 401);
    assert_eq!(app.login("carol", NEW).await.status(), 200);
    let admin = app.token("johndoe", "secret").await;
    assert_eq!(
        shown_to_admin(&app, &admin, "carol").await["email_verified"],
        json!(true)
    );
    // Single use.
    assert_eq!(
        reset(&app, &token, "yet another pass phrase").await,
        (400, json!({"detail": "Invalid or expired token"}), vec![])
    );
    assert_eq!(
        app.get(&format!("/reset-password?token={token}"), None)
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn the_reset_form_answers_with_pages_and_a_refused_password_keeps_the_link_good() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let token = carol_with_reset_token(&app, &sink).await;
    let weak = app
        .post_form(
            "/reset-password",
            &[("token", &token), ("password", "password1")],
        )
        .await;
    assert_eq!(weak.status(), 422);
    assert_eq!(weak.headers()["content-type"], "text/html; charset=utf-8");
    let html = weak.text().await.unwrap();
    assert!(html.contains("This password is too common"), "{html}");
    assert!(
        html.contains(&format!("name=\"token\" value=\"{token}\"")),
        "{html}"
    );
    let empty = app.post_form("/reset-password", &[("token", &token)]).await;
    assert_eq!(empty.status(), 422);
    // The JSON refusal is FastAPI's 422, and spends nothing either.
    assert_eq!(
        reset(&app, &token, "short").await.1,
        json!({"detail": [{"type": "string_too_short", "loc": ["body", "password"],
                           "msg": "String should have at least 8 characters",
                           "input": "**********", "ctx": {"min_length": 8}}]})
    );
    let done = app
        .post_form("/reset-password", &[("token", &token), ("password", NEW)])
        .await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains(PASSWORD_CHANGED));
    assert_eq!(app.login("carol", NEW).await.status(), 200);
    let again = app
        .post_form("/reset-password", &[("token", &token), ("password", NEW)])
        .await;
    assert_eq!(again.status(), 400);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("This link is invalid or has expired"));
}

#[tokio::test]
async fn a_reset_token_dies_when_it_expires_or_the_password_changes_another_way() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let token = carol_with_reset_token(&app, &sink).await;
    // Expired: its time is up (moved back rather than waited for).
    let backend = app.db.get_database_backend();
    app.db
        .execute(Statement::from_string(
            backend,
            format!("UPDATE email_tokens SET expires_at = {}", now() - 1),
        ))
        .await
        .unwrap();
    assert_eq!(
        reset(&app, &token, NEW).await,
        (400, json!({"detail": "Invalid or expired token"}), vec![])
    );

    // Dead after a change of password by the user...
    assert_eq!(forgot(&app, "carol@example.com").await.0, 202);
    let mails = sink.wait_for(3, Duration::from_secs(10)).await;
    let second = token_in(&mails[2], "/reset-password");
    let bearer = format!("Bearer {}", app.token("carol", STRONG).await);
    let changed = app
        .client
        .post(app.url("/users/me/password"))
        .header("Authorization", bearer)
        .json(&json!({"current_password": STRONG, "new_password": NEW}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    assert_eq!(reset(&app, &second, "yet another pass phrase").await.0, 400);

    // ... and by a later reset.
    assert_eq!(forgot(&app, "carol@example.com").await.0, 202);
    assert_eq!(forgot(&app, "carol@example.com").await.0, 202);
    let mails = sink.wait_for(5, Duration::from_secs(10)).await;
    let (third, fourth) = (
        token_in(&mails[3], "/reset-password"),
        token_in(&mails[4], "/reset-password"),
    );
    assert_eq!(reset(&app, &fourth, "the fourth pass phrase").await.0, 200);
    assert_eq!(reset(&app, &third, "the third pass phrase").await.0, 400);
    assert_eq!(
        app.login("carol", "the fourth pass phrase").await.status(),
        200
    );
}

#[tokio::test]
async fn forgot_password_answers_alike_for_every_address_and_mails_at_most_the_cap() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |s| s.mail_per_address_per_hour = 3).await;
    let expected = (
        202,
        json!({"message": "If an account has this address, a mail is on its way to it."}),
        vec![None],
    );
    // Unknown, disabled (alice), known (johndoe) past the cap, in any case.
    for email in ["nobody@example.com", "alice@example.com"] {
        assert_eq!(forgot(&app, email).await, expected, "{email}");
    }
    for email in [
        "johndoe@example.com",
        "JohnDoe@example.com",
        "JOHNDOE@EXAMPLE.COM",
        "johndoe@example.com",
        "johndoe@example.com",
    ] {
        assert_eq!(forgot(&app, email).await, expected, "{email}");
    }
    let mails = sink.wait_for(3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages().len(),
        3,
        "the cap holds, and nobody else was mailed"
    );
    assert!(mails
        .iter()
        .all(|m| header(m, "To") == Some("johndoe@example.com")));
    // Not an address at all: 422, as pydantic's EmailStr.
    let resp = app
        .client
        .post(app.url("/forgot-password"))
        .json(&json!({"email": "johndoe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(resp, &[]).await.0, 422);
}

#[tokio::test]
async fn forgot_password_is_no_slower_for_a_known_address() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |s| s.mail_per_address_per_hour = 1000).await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    // Interleaved, so that the machine's load falls on both alike.
    for round in 0..40 {
        for (email, samples) in [
            ("johndoe@example.com", &mut known),
            ("nobody@example.com", &mut unknown),
        ] {
            let started = Instant::now();
            let (status, _, _) = forgot(&app, email).await;
            let took = started.elapsed();
            assert_eq!(status, 202);
            if round >= 5 {
                samples.push(took);
            }
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let (known, unknown) = (median(&mut known), median(&mut unknown));
    // The same transaction shape: a tolerance for a shared, noisy machine, never a tight
    // bound.
    assert!(
        known <= unknown * 3 / 2 + Duration::from_millis(5),
        "known {known:?}, unknown {unknown:?}"
    );
    sink.wait_for(40, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn the_password_policy_holds_wherever_a_password_is_set_but_not_for_the_demo_seed() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    // The demo seed's "secret" is exempt: it logs in.
    let bearer = format!("Bearer {}", app.token("johndoe", "secret").await);
    let too_common = |field: &str| {
        json!({"detail": [{"type": "value_error", "loc": ["body", field],
               "msg": "Value error, this password is too common: it is among the first an attacker tries",
               "input": null,
               "ctx": {"error": "this password is too common: it is among the first an attacker tries"}}]})
    };
    // Self-service change.
    let resp = app
        .client
        .post(app.url("/users/me/password"))
        .header("Authorization", bearer.clone())
        .json(&json!({"current_password": "secret", "new_password": "iloveyou"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts(resp, &[]).await,
        (422, too_common("new_password"), vec![])
    );
    // The admin API, on create and on change.
    for (method, path, body) in [
        (
            "POST",
            "/admin/users/",
            json!({"username": "dave", "password": "qwerty123"}),
        ),
        (
            "PATCH",
            "/admin/users/alice",
            json!({"password": "qwerty123"}),
        ),
    ] {
        let resp = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .header("Authorization", bearer.clone())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            parts(resp, &[]).await,
            (422, too_common("password"), vec![]),
            "{method} {path}"
        );
    }
    assert_eq!(
        app.login("johndoe", "secret").await.status(),
        200,
        "nothing changed"
    );
    // The CLI.
    let db = app.test_db.as_ref().unwrap();
    for args in [
        &["user", "add", "dave"][..],
        &["user", "passwd", "johndoe"][..],
    ] {
        let out = crate::cli::gatehouse(db, args, "abc123\n");
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "error: the password must be at least 8 characters\n",
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn a_reset_keeps_the_second_factor_on() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    let (_, recovery_codes, _) = crate::totp::enrolled(&app).await;
    assert_eq!(forgot(&app, "johndoe@example.com").await.0, 202);
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    let token = token_in(&mails[0], "/reset-password");
    assert_eq!(reset(&app, &token, NEW).await.0, 200);
    // The new password alone does not sign in: the factor is still on.
    assert_eq!(
        parts(
            crate::totp::login_with(&app, "johndoe", NEW, None).await,
            &[]
        )
        .await,
        (401, json!({"detail": "Second factor required"}), vec![])
    );
    // (A recovery code: the current step's code was spent confirming the factor.)
    let with_factor = crate::totp::login_with(&app, "johndoe", NEW, Some(&recovery_codes[0])).await;
    assert_eq!(with_factor.status(), 200);
}
