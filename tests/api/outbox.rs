//! The outbox through the real binary and a real SMTP server (SPEC §10, "Mail"): a relay
//! that is down or refuses delays a mail and never loses it, across restarts and
//! replicas, and each mail is sent once; `--demo` without a relay logs it; `gatehouse mail
//! test` says what the relay answered.

use std::{
    collections::HashSet,
    process::Output,
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::{
    helpers::{gatehouse_command, output_within, ServingBinary, TestDb},
    smtp_sink::{app_mailing_to, header, token_in, SmtpSink, PUBLIC_URL},
};

const STRONG: &str = "correct horse battery staple";

/// The environment of a replica whose mail goes to `sink`.
fn mail_env(sink: &SmtpSink) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_URL", sink.url()),
        ("PUBLIC_URL", PUBLIC_URL.to_owned()),
        (
            "MAIL_FROM",
            "gatehouse <noreply@accounts.example.com>".to_owned(),
        ),
        ("MAIL_RETRY_MAX_SECS", "1".to_owned()),
        ("SIGNUP", "open".to_owned()),
    ]
}

async fn replica(db: &TestDb, sink: &SmtpSink) -> ServingBinary {
    let env = mail_env(sink);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServingBinary::start(&db.url, &["serve"], &env).await
}

async fn post(client: &reqwest::Client, url: String, body: serde_json::Value) -> u16 {
    client
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_mail_outlives_a_relay_that_is_down_and_a_restart_and_arrives_once() {
    let db = TestDb::new().await;
    let mut sink = SmtpSink::down();
    let first = replica(&db, &sink).await;
    let client = reqwest::Client::new();
    let signup = json!({"username": "carol", "email": "carol@example.com", "password": STRONG});
    // The relay is down: the request does not fail.
    assert_eq!(post(&client, first.at("/users/"), signup).await, 201);
    assert!(
        first
            .logged(|l| l.contains("mail not delivered; retrying")
                && l.contains("could not talk to the relay"))
            .await,
        "{}",
        first.log()
    );
    first.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, _) = first.wait().await;
    assert!(status.success());

    let second = replica(&db, &sink).await;
    sink.up().await;
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(header(&mails[0], "To"), Some("carol@example.com"));
    // The link of the mail works on the restarted server.
    let token = token_in(&mails[0], "/verify-email");
    assert_eq!(
        post(&client, second.at("/verify-email"), json!({"token": token})).await,
        200
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 1, "exactly once");
    assert!(
        !second.log().contains(&token),
        "tokens never appear in the log"
    );
}

#[tokio::test]
async fn a_relay_that_refuses_delays_the_mail_and_a_permanent_refusal_keeps_it() {
    let sink = SmtpSink::start().await;
    sink.set_refusing(true);
    let app = app_mailing_to(&sink, |_| {}).await;
    let signup = json!({"username": "carol", "email": "carol@example.com", "password": STRONG});
    assert_eq!(post(&app.client, app.url("/users/"), signup).await, 201);
    let backend = app.db.get_database_backend();
    let outbox = || async {
        let rows = app
            .db
            .query_all(Statement::from_string(
                backend,
                "SELECT recipient, attempts, last_error, delivered_at FROM mail_outbox ORDER BY id",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.try_get::<String>("", "recipient").unwrap(),
                    r.try_get::<i32>("", "attempts").unwrap(),
                    r.try_get::<Option<String>>("", "last_error").unwrap(),
                    r.try_get::<Option<i64>>("", "delivered_at")
                        .unwrap()
                        .is_some(),
                )
            })
            .collect::<Vec<_>>()
    };
    // Retried while the relay answers 451...
    let started = Instant::now();
    while outbox().await[0].1 < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            outbox().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = &outbox().await[0];
    assert!(!row.3);
    assert_eq!(
        row.2.as_deref(),
        Some("relay answered 451: transient error (451): 4.3.0 try again later")
    );
    assert!(sink.messages().is_empty());
    // ... and delivered once it accepts.
    sink.set_refusing(false);
    sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.messages().len(), 1);
    assert!(outbox().await[0].3);

    // A 5xx (here for an address the relay rejects) is an operator's problem: the mail
    // stays, retried, never dropped.
    let signup = json!({"username": "dave", "email": "reject@example.com", "password": STRONG});
    assert_eq!(post(&app.client, app.url("/users/"), signup).await, 201);
    let started = Instant::now();
    while outbox().await.get(1).is_none_or(|r| r.1 < 2) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            outbox().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = &outbox().await[1];
    assert_eq!(row.0, "reject@example.com");
    assert!(!row.3);
    assert_eq!(
        row.2.as_deref(),
        Some("relay answered 550: permanent error (550): 5.1.1 no such user")
    );
}

#[tokio::test]
async fn two_postgres_replicas_share_one_outbox_and_send_each_mail_once() {
    let db = TestDb::postgres().await;
    let mut sink = SmtpSink::down();
    let replicas = [replica(&db, &sink).await, replica(&db, &sink).await];
    const USERS: usize = 12;
    for n in 0..USERS {
        let out = output_within(
            gatehouse_command()
                .args([
                    "user",
                    "add",
                    &format!("user{n}"),
                    "--email",
                    &format!("user{n}@example.com"),
                ])
                .env("DATABASE_URL", &db.url),
            "a long enough pass phrase\n",
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let client = reqwest::Client::new();
    // Every mail is written while the relay is down, half on each replica: both senders
    // then retry the same rows at the same moments.
    for n in 0..USERS {
        let server = &replicas[n % 2];
        let body = json!({"email": format!("user{n}@example.com")});
        assert_eq!(
            post(&client, server.at("/forgot-password"), body).await,
            202
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    sink.up().await;
    sink.wait_for(USERS, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), USERS, "no mail sent twice");
    let ids: HashSet<&str> = mails
        .iter()
        .filter_map(|m| header(m, "Message-ID"))
        .collect();
    assert_eq!(ids.len(), USERS);
    let recipients: HashSet<&str> = mails.iter().filter_map(|m| header(m, "To")).collect();
    assert_eq!(recipients.len(), USERS);
    // Every link works, on either replica.
    for (n, mail) in mails.iter().enumerate() {
        let token = token_in(mail, "/reset-password");
        let body = json!({"token": token, "password": format!("a new pass phrase {n}")});
        assert_eq!(
            post(&client, replicas[n % 2].at("/reset-password"), body).await,
            200
        );
    }
}

fn mail_test(env: &[(&str, &str)], address: &str) -> Output {
    output_within(
        gatehouse_command()
            .args(["mail", "test", address])
            .envs(env.iter().copied()),
        "",
        Duration::from_secs(60),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn mail_test_says_what_the_relay_answered() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let from = "gatehouse <noreply@accounts.example.com>";
    let sent = tokio::task::spawn_blocking(move || {
        let env = [("SMTP_URL", url.as_str()), ("MAIL_FROM", from)];
        (
            mail_test(&env, "ops@example.com"),
            mail_test(&env, "reject@example.com"),
        )
    })
    .await
    .unwrap();
    let (accepted, rejected) = sent;
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    let shown = sink.url();
    assert_eq!(
        text(&accepted.stdout),
        format!(
            "sending a test mail to ops@example.com through {shown}\nthe relay accepted it: 250 2.0.0 queued\n"
        )
    );
    assert_eq!(rejected.status.code(), Some(1));
    assert_eq!(
        text(&rejected.stderr),
        "error: the mail was not accepted: relay answered 550: permanent error (550): 5.1.1 no such user\n"
    );
    let mails = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(header(&mails[0], "Subject"), Some("gatehouse test mail"));

    let down = SmtpSink::down();
    let down_url = down.url();
    let outcomes = tokio::task::spawn_blocking(move || {
        let unreachable = mail_test(
            &[("SMTP_URL", down_url.as_str()), ("MAIL_FROM", from)],
            "ops@example.com",
        );
        let unset = mail_test(&[("MAIL_FROM", from)], "ops@example.com");
        let invalid = mail_test(
            &[
                ("SMTP_URL", "smtp://u:hunter2@relay.example.com?tls=maybe"),
                ("MAIL_FROM", from),
            ],
            "ops@example.com",
        );
        (unreachable, unset, invalid)
    })
    .await
    .unwrap();
    let (unreachable, unset, invalid) = outcomes;
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        text(&unreachable.stderr)
            .starts_with("error: the mail was not accepted: could not talk to the relay: "),
        "{}",
        text(&unreachable.stderr)
    );
    assert_eq!(unset.status.code(), Some(1));
    assert_eq!(
        text(&unset.stderr),
        "error: SMTP_URL is not set: there is no relay to test\n"
    );
    assert_eq!(invalid.status.code(), Some(1));
    assert!(
        text(&invalid.stderr).starts_with("error: SMTP_URL must be an SMTP URL"),
        "{}",
        text(&invalid.stderr)
    );
    assert!(!text(&invalid.stderr).contains("hunter2"));
}

#[tokio::test]
async fn serve_with_a_relay_needs_public_url_and_mail_from() {
    let db = TestDb::new().await;
    let sink = SmtpSink::start().await;
    let url = sink.url();
    for (env, expected) in [
        (
            vec![
                ("SMTP_URL", url.as_str()),
                ("MAIL_FROM", "noreply@example.com"),
            ],
            "SMTP_URL is set but PUBLIC_URL is not",
        ),
        (
            vec![("SMTP_URL", url.as_str()), ("PUBLIC_URL", PUBLIC_URL)],
            "SMTP_URL is set but MAIL_FROM is not",
        ),
    ] {
        let mut all = vec![
            ("DATABASE_URL", db.url.as_str()),
            ("SECRET_KEY", crate::helpers::TEST_SECRET),
        ];
        all.extend(env);
        let log = ServingBinary::start_with_env(&["serve"], &all)
            .await
            .err()
            .expect("refused to start");
        assert!(log.contains(expected), "{log}");
    }
}

#[tokio::test]
async fn serve_demo_without_a_relay_writes_each_mail_and_its_link_to_the_log() {
    let db = TestDb::new().await;
    let server = ServingBinary::start(&db.url, &["serve", "--demo"], &[]).await;
    let client = reqwest::Client::new();
    let signup = json!({"username": "carol", "email": "carol@example.com", "password": STRONG});
    assert_eq!(post(&client, server.at("/users/"), signup).await, 201);
    let prefix = format!("link={}/verify-email?token=", server.url);
    assert!(
        server.logged(|l| l.contains(&prefix)).await,
        "{}",
        server.log()
    );
    let log = server.log();
    let line = log.lines().find(|l| l.contains(&prefix)).unwrap();
    assert!(line.contains("to=carol@example.com"), "{line}");
    let token = line
        .split(&prefix)
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert_eq!(
        post(&client, server.at("/verify-email"), json!({"token": token})).await,
        200
    );
}
