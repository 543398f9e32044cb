//! Addresses became unique (case-insensitively) with a migration: users that already
//! shared one keep working, `gatehouse user list` reports them, new ones are refused.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::{
    cli::gatehouse,
    helpers::{parts, start, TestDb},
    signup::sign_up,
    smtp_sink::{header, mail_through, SmtpSink},
};

/// How many migrations come before the one that made addresses unique.
fn before_unique_addresses() -> u32 {
    let position = Migrator::migrations()
        .iter()
        .position(|m| m.name().ends_with("_accounts_mail"))
        .unwrap();
    u32::try_from(position).unwrap()
}

#[tokio::test]
async fn users_sharing_an_address_do_not_stop_the_migration_and_are_reported() {
    let test_db = TestDb::new().await;
    let db = gatehouse::db::connect(&test_db.url).await.unwrap();
    Migrator::up(&db, Some(before_unique_addresses()))
        .await
        .unwrap();
    let backend = db.get_database_backend();
    for (name, email) in [
        ("ann", "Shared@Example.com"),
        ("bob", "shared@example.com"),
        ("cy", "cy@example.com"),
        ("dee", "SHARED@example.com "),
    ] {
        // A hash of "secret": these users log in as before.
        db.execute(Statement::from_string(
            backend,
            format!(
                "INSERT INTO users (username, email, full_name, hashed_password, disabled, \
                 token_version, scopes, created_at, updated_at) VALUES ('{name}', '{email}', \
                 NULL, '$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc', \
                 false, 0, 'me items', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
        ))
        .await
        .unwrap();
    }
    Migrator::up(&db, None).await.unwrap();

    let list = gatehouse(&test_db, &["user", "list"], "");
    assert!(list.status.success());
    let out = String::from_utf8_lossy(&list.stdout);
    assert!(
        out.ends_with(
            "\nusers sharing an address (from before addresses were unique; only the first \
             one's is found by password reset and verification):\n  shared@example.com: ann, bob, dee\n"
        ),
        "{out}"
    );

    let sink = SmtpSink::start().await;
    let mut settings = test_db.settings();
    mail_through(&mut settings, &sink);
    let app = start(settings).await;
    for name in ["ann", "bob", "dee"] {
        assert_eq!(app.login(name, "secret").await.status(), 200, "{name}");
    }
    // The address is taken for everybody new, and a reset reaches its first holder.
    let body = json!({"username": "eve", "email": "shared@EXAMPLE.com",
                      "password": "correct horse battery staple"});
    assert_eq!(
        sign_up(&app.client, &app.address, body).await.1,
        json!({"detail": "Email already registered"})
    );
    let resp = app
        .client
        .post(app.url("/forgot-password"))
        .json(&json!({"email": "shared@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(resp, &[]).await.0, 202);
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(header(&mails[0], "To"), Some("Shared@Example.com"));
    assert!(crate::smtp_sink::bodies(&mails[0]).0.contains("Hello ann,"));
}
