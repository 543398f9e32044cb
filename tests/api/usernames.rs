//! Usernames: new ones are width-mapped and in NFC, refuse spaces, separators, control and
//! invisible characters, and may not look like an existing one; names stored before these
//! rules keep working.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use gatehouse::{
    accounts::usernames::look_alike_key,
    db::{self, user::NewUser},
};

use crate::{
    cli::gatehouse,
    helpers::{parts, start, TestApp, TestDb},
};

/// The tutorial's hash of "secret".
const SECRET_HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc";

async fn admin_token(app: &TestApp) -> String {
    app.login_with_scope("johndoe", "secret", "admin").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `POST /admin/users/` of `username` with password "pass-phrase": status and body.
async fn create(app: &TestApp, admin: &str, username: &str) -> (u16, Value) {
    let body = json!({"username": username, "password": "pass-phrase"});
    let resp = app
        .client
        .request(Method::POST, app.url("/admin/users/"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body, _) = parts(resp, &[]).await;
    (status, body)
}

fn already_registered() -> (u16, Value) {
    (409, json!({"detail": "Username already registered"}))
}

/// The AdminUser of a user created with the default scopes.
fn created(username: &str) -> (u16, Value) {
    (
        201,
        json!({"username": username, "email": null, "full_name": null, "disabled": false,
               "scopes": ["me", "items"], "totp_enabled": false, "email_verified": false}),
    )
}

fn refused(message: &str) -> (u16, Value) {
    (
        422,
        json!({"detail": [{"type": "value_error", "loc": ["body", "username"],
                           "msg": format!("Value error, {message}"), "input": null,
                           "ctx": {"error": message}}]}),
    )
}

async fn usernames(app: &TestApp, admin: &str) -> Vec<String> {
    let resp = app
        .client
        .get(app.url("/admin/users/"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    let users: Vec<Value> = resp.json().await.unwrap();
    users
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

/// A user inserted as a release before these rules stored it: no look-alike key.
async fn insert_existing(db: &db::Db, username: &str) {
    let user = NewUser {
        username: username.to_owned(),
        email: None,
        full_name: None,
        hashed_password: SECRET_HASH.to_owned(),
        disabled: false,
        username_skeleton: None,
        scopes: None,
    };
    db::user::create(db, user).await.unwrap();
}

/// The look-alike key recorded for `username`.
async fn key(app: &TestApp, username: &str) -> Option<String> {
    db::user::find(&app.db, username)
        .await
        .unwrap()
        .unwrap()
        .username_skeleton
}

async fn me(app: &TestApp, username: &str) -> Value {
    let token = app.token(username, "secret").await;
    app.me(&token).await.json().await.unwrap()
}

#[tokio::test]
async fn names_that_look_like_an_existing_one_are_already_registered() {
    let test_db = TestDb::new().await;
    let app = start(test_db.settings()).await;
    let admin = admin_token(&app).await;

    for look_alike in [
        "j\u{43e}hndoe",                                            // Cyrillic о
        "\u{ff4a}\u{ff4f}\u{ff48}\u{ff4e}\u{ff44}\u{ff4f}\u{ff45}", // fullwidth
        "JohnDoe",
        "ALICE",
        "\u{430}lice", // Cyrillic а
    ] {
        assert_eq!(
            create(&app, &admin, look_alike).await,
            already_registered(),
            "{look_alike:?}"
        );
    }
    // A name of its own is created, and then its look-alikes are taken too.
    assert_eq!(
        create(&app, &admin, "jos\u{e9}").await,
        created("jos\u{e9}")
    );
    assert_eq!(
        create(&app, &admin, "jose\u{301}").await,
        already_registered(),
        "NFD after NFC"
    );
    assert_eq!(
        usernames(&app, &admin).await,
        ["alice", "johndoe", "jos\u{e9}"]
    );
}

#[tokio::test]
async fn new_names_are_stored_width_mapped_and_in_nfc() {
    let test_db = TestDb::new().await;
    let app = start(test_db.settings()).await;
    let admin = admin_token(&app).await;

    assert_eq!(
        create(&app, &admin, "\u{ff43}\u{ff41}\u{ff52}\u{ff4f}\u{ff4c}").await,
        created("carol")
    );
    assert_eq!(
        create(&app, &admin, "rene\u{301}").await,
        created("ren\u{e9}")
    );
    assert_eq!(create(&app, &admin, "carol").await, already_registered());
    assert_eq!(
        create(&app, &admin, "ren\u{e9}").await,
        already_registered()
    );
    // Stored as prepared: read, changed and logged in to by that name.
    let resp = app
        .client
        .get(app.url("/admin/users/carol"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.login("carol", "pass-phrase").await.status(), 200);
    assert_eq!(app.login("ren\u{e9}", "pass-phrase").await.status(), 200);
}

#[tokio::test]
async fn names_with_spaces_separators_or_invisible_characters_are_refused_with_422() {
    let test_db = TestDb::new().await;
    let app = start(test_db.settings()).await;
    let admin = admin_token(&app).await;

    let cases = [
        (" mallory", "username must not contain spaces (U+0020)"),
        ("mallory ", "username must not contain spaces (U+0020)"),
        ("mal lory", "username must not contain spaces (U+0020)"),
        ("mal\u{a0}lory", "username must not contain spaces (U+00A0)"),
        (
            "mal\u{200b}lory",
            "username must not contain invisible or direction formatting characters (U+200B)",
        ),
        (
            "\u{feff}mallory",
            "username must not contain invisible or direction formatting characters (U+FEFF)",
        ),
        (
            "mal\u{202e}yrol",
            "username must not contain invisible or direction formatting characters (U+202E)",
        ),
        (
            "mal\u{2028}lory",
            "username must not contain line or paragraph separators (U+2028)",
        ),
        (
            "mal\u{2029}lory",
            "username must not contain line or paragraph separators (U+2029)",
        ),
    ];
    for (name, message) in cases {
        assert_eq!(
            create(&app, &admin, name).await,
            refused(message),
            "{name:?}"
        );
    }
    assert_eq!(usernames(&app, &admin).await, ["alice", "johndoe"]);
}

#[tokio::test]
async fn cli_prepares_new_names_and_refuses_look_alikes_as_taken() {
    let dir = TestDb::new().await;
    let add = |name: &str| gatehouse(&dir, &["user", "add", name], "pass-phrase\n");
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let carol = add("\u{ff43}\u{ff41}\u{ff52}\u{ff4f}\u{ff4c}");
    assert!(carol.status.success(), "{}", stderr(&carol));
    assert_eq!(stdout(&carol), "created user carol\n");
    for (name, stored) in [
        ("carol", "carol"),
        ("CAROL", "CAROL"),
        ("c\u{430}rol", "c\u{430}rol"),
    ] {
        let out = add(name);
        assert!(!out.status.success(), "{name:?}");
        assert_eq!(
            stderr(&out),
            format!("error: user {stored:?} already exists\n"),
            "{name:?}"
        );
    }
    let nfd = add("rene\u{301}");
    assert_eq!(stdout(&nfd), "created user ren\u{e9}\n");
    let again = add("ren\u{e9}");
    assert_eq!(stderr(&again), "error: user \"ren\u{e9}\" already exists\n");
    // Refused before the password is read.
    for (name, message) in [
        ("car ol", "username must not contain spaces (U+0020)"),
        (
            "dave\u{200b}",
            "username must not contain invisible or direction formatting characters (U+200B)",
        ),
        (
            "da\u{2028}ve",
            "username must not contain line or paragraph separators (U+2028)",
        ),
    ] {
        let out = gatehouse(&dir, &["user", "add", name], "");
        assert!(!out.status.success(), "{name:?}");
        assert_eq!(stderr(&out), format!("error: {message}\n"), "{name:?}");
    }
    let list = stdout(&gatehouse(&dir, &["user", "list"], ""));
    let names: Vec<&str> = list
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["carol", "ren\u{e9}"]);
}

#[tokio::test]
async fn names_stored_before_the_rules_keep_logging_in_and_guard_their_look_alikes() {
    let test_db = TestDb::new().await;
    let before = start(test_db.settings()).await;
    let existing = [
        " spaced ",
        "bob\u{200b}",
        "jose\u{301}",
        "\u{ff57}\u{ff49}\u{ff44}\u{ff45}",
        "mallory",
        "MALLORY",
    ];
    for name in existing {
        insert_existing(&before.db, name).await;
    }

    // A restart records the keys of the existing users, and starts all the same although
    // two of them look alike.
    let app = start(test_db.settings()).await;
    for name in existing {
        let me = me(&app, name).await;
        assert_eq!(me["username"], name, "{name:?}");
    }
    assert_eq!(key(&app, "mallory").await, Some(look_alike_key("mallory")));
    assert_eq!(
        key(&app, "MALLORY").await,
        None,
        "the older one holds the key"
    );
    assert_eq!(key(&app, "bob\u{200b}").await, Some(look_alike_key("bob")));

    let admin = admin_token(&app).await;
    for look_alike in ["Mallory", "bob", "jos\u{e9}", "wide", "WIDE"] {
        assert_eq!(
            create(&app, &admin, look_alike).await,
            already_registered(),
            "{look_alike:?}"
        );
    }
    // Another restart changes nothing, and still starts.
    let again = start(test_db.settings()).await;
    assert_eq!(me(&again, "MALLORY").await["username"], "MALLORY");
    assert_eq!(key(&app, "MALLORY").await, None);
}

#[tokio::test]
async fn concurrent_creations_of_look_alike_names_on_two_replicas_leave_one_user() {
    let test_db = TestDb::new().await;
    let replicas = [
        start(test_db.settings()).await,
        start(test_db.settings()).await,
    ];
    let admin = admin_token(&replicas[0]).await;

    for (round, names) in [
        ["zoe", "ZOE", "z\u{43e}e", "\u{ff5a}\u{ff4f}\u{ff45}"],
        ["eve", "EVE", "\u{435}ve", "Eve"],
        ["ola", "OLA", "\u{43e}la", "Ola"],
    ]
    .into_iter()
    .enumerate()
    {
        let answers = join_all(
            names
                .iter()
                .enumerate()
                .map(|(i, name)| create(&replicas[i % 2], &admin, name)),
        )
        .await;
        let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "round {round}: {answers:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 409).count(),
            3,
            "round {round}: {answers:?}"
        );
    }
    let names = usernames(&replicas[1], &admin).await;
    assert_eq!(names.len(), 5, "{names:?}");
}

#[tokio::test]
async fn existing_users_get_their_keys_in_pages_and_a_held_key_is_never_taken() {
    use gatehouse::{accounts::usernames::record_look_alike_keys, db::username_skeleton};
    use sea_orm::ConnectionTrait;

    let test_db = TestDb::new().await;
    let db = gatehouse::app::open_database(&test_db.settings())
        .await
        .unwrap();
    // 1200 users (more than two pages), then look-alikes of the first ten and a pair of
    // look-alikes next to each other (on one page), all as a release before the rules
    // stored them.
    db.execute_unprepared(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) \
         INSERT INTO users (username, hashed_password, disabled, token_version, created_at, updated_at) \
         SELECT 'user' || i, 'x', false, 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM n",
    )
    .await
    .unwrap();
    for name in (1..=10)
        .map(|i| format!("USER{i}"))
        .chain(["mallory".to_owned(), "MALLORY".to_owned()])
    {
        insert_existing(&db, &name).await;
    }

    assert_eq!(record_look_alike_keys(&db).await.unwrap(), 1201);
    let key = |name: &str| {
        let db = &db;
        let name = name.to_owned();
        async move {
            db::user::find(db, &name)
                .await
                .unwrap()
                .unwrap()
                .username_skeleton
        }
    };
    assert_eq!(key("user1").await, Some(look_alike_key("user1")));
    assert_eq!(key("user1200").await, Some(look_alike_key("user1200")));
    assert_eq!(key("USER1").await, None);
    assert_eq!(key("mallory").await, Some(look_alike_key("mallory")));
    assert_eq!(key("MALLORY").await, None);
    // Nothing left to record, however often it runs.
    assert_eq!(record_look_alike_keys(&db).await.unwrap(), 0);

    // A key some user holds is never recorded for another, alone or with others.
    let id = |name: &str| {
        let db = &db;
        let name = name.to_owned();
        async move { db::user::find(db, &name).await.unwrap().unwrap().id }
    };
    let (upper, upper2) = (id("USER1").await, id("USER2").await);
    let keys = [
        (upper2, look_alike_key("fresh")),
        (upper, look_alike_key("user1")),
    ];
    assert!(!username_skeleton::record_all(&db, &keys).await.unwrap());
    assert_eq!(key("USER2").await, None, "all or none");
    assert!(
        !username_skeleton::record(&db, upper, &look_alike_key("user1"))
            .await
            .unwrap()
    );
    assert!(
        username_skeleton::record(&db, upper2, &look_alike_key("fresh"))
            .await
            .unwrap()
    );
    assert_eq!(key("USER2").await, Some(look_alike_key("fresh")));
}

#[tokio::test]
async fn a_name_logs_in_in_its_fullwidth_and_nfd_forms_and_counts_its_failures_once() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.max_failed_logins_per_account = 3;
        s.max_failed_logins_per_address = 1000;
    })
    .await;
    let admin = admin_token(&app).await;
    assert_eq!(
        create(&app, &admin, "ren\u{e9}").await,
        created("ren\u{e9}")
    );

    let fullwidth_johndoe = "\u{ff4a}\u{ff4f}\u{ff48}\u{ff4e}\u{ff44}\u{ff4f}\u{ff45}";
    for (sent, stored, password) in [
        (fullwidth_johndoe, "johndoe", "secret"),
        ("\u{ff4a}ohndoe", "johndoe", "secret"),
        ("rene\u{301}", "ren\u{e9}", "pass-phrase"),
    ] {
        let token = app.token(sent, password).await;
        assert_eq!(crate::helpers::segment(&token, 1)["sub"], stored);
        let me: Value = app.me(&token).await.json().await.unwrap();
        assert_eq!(me["username"], stored, "{sent:?}");
    }
    // An unknown name answers alike in any form.
    let unknown = |name: &'static str| {
        let app = &app;
        async move { parts(app.login(name, "secret").await, &["www-authenticate"]).await }
    };
    assert_eq!(
        unknown("\u{ff4e}\u{ff4f}\u{ff42}\u{ff4f}\u{ff44}\u{ff59}").await,
        unknown("nobody").await
    );

    // The forms of one name share its failed-login budget: three failures in three forms
    // lock out all of them.
    for sent in [fullwidth_johndoe, "johndoe", "\u{ff4a}ohndoe"] {
        assert_eq!(app.login(sent, "wrong").await.status(), 401, "{sent:?}");
    }
    let too_many = (
        429,
        json!({"detail": "Too many failed attempts, retry later"}),
    );
    for sent in ["johndoe", fullwidth_johndoe] {
        let (status, body, _) = parts(app.login(sent, "secret").await, &[]).await;
        assert_eq!((status, body), too_many, "{sent:?}");
    }
    // Another name is another budget.
    assert_eq!(app.login("ren\u{e9}", "pass-phrase").await.status(), 200);
}

#[tokio::test]
async fn a_name_stored_as_sent_wins_over_its_prepared_form() {
    let test_db = TestDb::new().await;
    let app = start(test_db.settings()).await;
    // Two users an older release could store: a fullwidth name and its ASCII form.
    let fullwidth = "\u{ff57}\u{ff49}\u{ff44}\u{ff45}";
    insert_existing(&app.db, fullwidth).await;
    let user = NewUser {
        username: "wide".to_owned(),
        email: None,
        full_name: None,
        hashed_password: gatehouse::auth::password::hash_password("other").unwrap(),
        disabled: false,
        username_skeleton: None,
        scopes: None,
    };
    db::user::create(&app.db, user).await.unwrap();

    assert_eq!(me(&app, fullwidth).await["username"], fullwidth);
    assert_eq!(app.login(fullwidth, "other").await.status(), 401);
    let token = app.token("wide", "other").await;
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["username"], "wide");
}
