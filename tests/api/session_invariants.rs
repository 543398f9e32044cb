//! The session invariants an attack found missing (SPEC §7, "Invariants found by attack"),
//! on the real binary: on a SQLite file, and on two replicas sharing one PostgreSQL
//! database.
//!
//! - A login whose password check races a password change, an admin change, a disable or
//!   a `user revoke` never yields a live session.
//! - Refresh storage per session does not grow with refreshes, and every earlier refresh
//!   token of a session is still recognised as spent.
//! - Revocations never fail while refreshes run on both replicas (one lock order).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use reqwest::Client;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::{
    cli::gatehouse,
    helpers::{segment, ServingBinary, TestDb},
};

/// Replicas on one database: one on SQLite, two on PostgreSQL. Changes go to the first,
/// logins and refreshes to the last.
struct Deployment {
    db: TestDb,
    replicas: Vec<ServingBinary>,
    client: Client,
}

impl Deployment {
    /// `replicas` servers with `env`, on `db` with the admin `root` (password `root-pass-phrase`).
    async fn start(db: TestDb, replicas: usize, env: &[(&str, &str)]) -> Self {
        let mut all = vec![
            ("MAX_FAILED_LOGINS_PER_ADDRESS", "100000"),
            ("MAX_FAILED_LOGINS_PER_ACCOUNT", "100000"),
        ];
        all.extend_from_slice(env);
        let add = gatehouse(
            &db,
            &["user", "add", "root", "--scopes", "admin me"],
            "root-pass-phrase\n",
        );
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let mut started = Vec::new();
        for _ in 0..replicas {
            started.push(ServingBinary::start(&db.url, &["serve"], &all).await);
        }
        Self {
            db,
            replicas: started,
            client: Client::new(),
        }
    }

    fn changes(&self) -> &ServingBinary {
        &self.replicas[0]
    }

    fn logins(&self) -> &ServingBinary {
        self.replicas.last().expect("a replica")
    }

    fn add_user(&self, name: &str, password: &str) {
        let add = gatehouse(&self.db, &["user", "add", name], &format!("{password}\n"));
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
    }

    async fn login(&self, server: &ServingBinary, user: &str, password: &str) -> Value {
        let resp = server.login(&self.client, user, password).await;
        assert_eq!(resp.status(), 200, "login of {user}");
        resp.json().await.unwrap()
    }

    async fn refresh(&self, server: &ServingBinary, token: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(server.at("/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn me(&self, server: &ServingBinary, token: &str) -> u16 {
        let resp = self
            .client
            .get(server.at("/users/me/"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    }

    /// `body` with `token` on `method path` of the first replica; the status.
    async fn send(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> u16 {
        let resp = self
            .client
            .request(method, self.changes().at(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    }

    /// Whether a replica logged that a login was refused because its user changed under it.
    fn saw_a_raced_login(&self) -> bool {
        self.replicas.iter().any(|r| {
            r.log()
                .contains("the user changed during the password check")
        })
    }
}

/// The four ways a user's sessions are ended while an attacker who knows the old password
/// logs in again and again.
#[derive(Debug, Clone, Copy)]
enum Revocation {
    OwnPasswordChange,
    AdminPasswordChange,
    DisableThenEnable,
    CliRevoke,
}

impl Revocation {
    const ALL: [Self; 4] = [
        Self::OwnPasswordChange,
        Self::AdminPasswordChange,
        Self::DisableThenEnable,
        Self::CliRevoke,
    ];

    async fn apply(self, deployment: &Deployment, user: &str, password: &str, admin: &str) {
        use reqwest::Method;
        match self {
            Self::OwnPasswordChange => {
                let own = deployment.login(deployment.changes(), user, password).await;
                let status = deployment
                    .send(
                        Method::POST,
                        "/users/me/password",
                        own["access_token"].as_str().unwrap(),
                        json!({"current_password": password, "new_password": "a-new-password"}),
                    )
                    .await;
                assert_eq!(status, 204);
            }
            Self::AdminPasswordChange => {
                let path = format!("/admin/users/{user}");
                let body = json!({"password": "a-new-password"});
                assert_eq!(
                    deployment.send(Method::PATCH, &path, admin, body).await,
                    200
                );
            }
            Self::DisableThenEnable => {
                let path = format!("/admin/users/{user}");
                let body = json!({"disabled": true});
                assert_eq!(
                    deployment.send(Method::PATCH, &path, admin, body).await,
                    200
                );
            }
            Self::CliRevoke => {
                let out = gatehouse(&deployment.db, &["user", "revoke", user], "");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    /// The second half of a revocation in two steps, once the attack has stopped.
    async fn complete(self, deployment: &Deployment, user: &str, admin: &str) {
        if let Self::DisableThenEnable = self {
            let path = format!("/admin/users/{user}");
            let body = json!({"disabled": false});
            let status = deployment
                .send(reqwest::Method::PATCH, &path, admin, body)
                .await;
            assert_eq!(status, 200);
        }
    }
}

/// Every pair an attacker got from logging in as `user` with `password` in a loop on four
/// connections while `revocation` runs; `(ver, access, refresh)` of each.
async fn attack_during(
    deployment: &Deployment,
    revocation: Revocation,
    user: &str,
    password: &str,
    admin: &str,
) -> Vec<(i64, String, String)> {
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(Mutex::new(Vec::new()));
    let url = deployment.logins().at("/token");
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, got, url) = (stop.clone(), got.clone(), url.clone());
            let (user, password) = (user.to_owned(), password.to_owned());
            tokio::spawn(async move {
                let client = Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let resp = client
                        .post(&url)
                        .form(&[("username", &user), ("password", &password)])
                        .send()
                        .await
                        .unwrap();
                    if resp.status() == 200 {
                        let body: Value = resp.json().await.unwrap();
                        let access = body["access_token"].as_str().unwrap().to_owned();
                        let refresh = body["refresh_token"].as_str().unwrap().to_owned();
                        let ver = segment(&access, 1)["ver"].as_i64().unwrap();
                        got.lock().unwrap().push((ver, access, refresh));
                    }
                }
            })
        })
        .collect();
    // The queue of logins behind the one hashing thread fills up first.
    tokio::time::sleep(Duration::from_millis(600)).await;
    revocation.apply(deployment, user, password, admin).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.await.unwrap();
    }
    revocation.complete(deployment, user, admin).await;
    let got = got.lock().unwrap().clone();
    got
}

/// Races each revocation with an attacker's logins; every session started with the
/// user's old `token_version` must be dead afterwards, for refresh and bearer alike.
async fn no_raced_login_outlives_a_revocation(deployment: Deployment) {
    let admin = deployment
        .login(deployment.changes(), "root", "root-pass-phrase")
        .await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    for (i, revocation) in Revocation::ALL.into_iter().enumerate() {
        let (user, password) = (format!("victim{i}"), format!("old-password-{i}"));
        deployment.add_user(&user, &password);
        let got = attack_during(&deployment, revocation, &user, &password, &admin).await;
        assert!(
            !got.is_empty(),
            "{revocation:?}: the attacker got in before the change"
        );
        // Every revocation bumps the user's version once, from 0.
        for (ver, access, refresh) in got.iter().filter(|(ver, ..)| *ver == 0) {
            for server in &deployment.replicas {
                assert_eq!(
                    deployment.me(server, access).await,
                    401,
                    "{revocation:?}: an access token of version {ver} on {}",
                    server.url
                );
            }
            let (status, body) = deployment.refresh(deployment.logins(), refresh).await;
            assert_eq!(
                (status, &body["error"]),
                (400, &json!("invalid_grant")),
                "{revocation:?}: a refresh token of a session started at version {ver}: {body}"
            );
        }
    }
    // The race was run, not just the sequence: some login passed its password check
    // before a change and tried to start its session after it.
    assert!(
        deployment.saw_a_raced_login(),
        "no login raced a change: the test did not test the race"
    );
}

/// One hashing thread: logins queue behind each other with the user read and the hash
/// still to come, the window a change can fall into.
const ONE_HASHING_THREAD: [(&str, &str); 1] = [("HASH_WORKERS", "1")];

#[tokio::test]
async fn on_sqlite_no_login_that_races_a_revocation_yields_a_live_session() {
    let deployment = Deployment::start(TestDb::sqlite(), 1, &ONE_HASHING_THREAD).await;
    no_raced_login_outlives_a_revocation(deployment).await;
}

#[tokio::test]
async fn on_two_postgres_replicas_no_login_that_races_a_revocation_yields_a_live_session() {
    let db = TestDb::postgres().await;
    no_raced_login_outlives_a_revocation(Deployment::start(db, 2, &ONE_HASHING_THREAD).await).await;
}

async fn count(db: &TestDb, table: &str) -> i64 {
    let conn = gatehouse::db::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let row = conn
        .query_one(Statement::from_string(
            backend,
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Eight clients refresh their own session in a chain for `churn` on the last replica;
/// each chain's first refresh token, access token and length.
async fn refresh_chains(deployment: &Deployment, churn: Duration) -> Vec<(String, String, u32)> {
    let mut chains = Vec::new();
    for _ in 0..8 {
        let pair = deployment
            .login(deployment.logins(), "carol", "carol-pass-phrase")
            .await;
        chains.push(pair["refresh_token"].as_str().unwrap().to_owned());
    }
    let url = deployment.logins().at("/token");
    let until = Instant::now() + churn;
    let tasks: Vec<_> = chains
        .into_iter()
        .map(|first| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = Client::new();
                let (mut current, mut access, mut refreshes) = (first.clone(), String::new(), 0);
                while Instant::now() < until {
                    let resp = client
                        .post(&url)
                        .form(&[("grant_type", "refresh_token"), ("refresh_token", &current)])
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200, "refresh {refreshes} of a chain");
                    let body: Value = resp.json().await.unwrap();
                    current = body["refresh_token"].as_str().unwrap().to_owned();
                    access = body["access_token"].as_str().unwrap().to_owned();
                    refreshes += 1;
                }
                (first, access, refreshes)
            })
        })
        .collect();
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.unwrap());
    }
    done
}

#[tokio::test]
async fn refresh_storage_stays_flat_under_churn_and_a_chains_first_token_is_still_a_reuse() {
    let deployment = Deployment::start(TestDb::sqlite(), 1, &[]).await;
    deployment.add_user("carol", "carol-pass-phrase");
    let chains = refresh_chains(&deployment, Duration::from_secs(10)).await;
    let refreshes: u32 = chains.iter().map(|(_, _, n)| n).sum();
    assert!(refreshes > 1000, "only {refreshes} refreshes in 10 s");
    // One row per session however often it was refreshed, and nothing else.
    assert_eq!(count(&deployment.db, "sessions").await, 8);
    assert_eq!(count(&deployment.db, "legacy_refresh_tokens").await, 0);

    // The first token of a chain hundreds of refreshes long ends its session.
    let (first, access, n) = &chains[0];
    assert!(*n > 100, "a chain of {n}");
    let (status, body) = deployment.refresh(deployment.logins(), first).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "The refresh token was already used; the session is ended"})
        )
    );
    assert_eq!(deployment.me(deployment.logins(), access).await, 401);
    assert_eq!(deployment.me(deployment.logins(), &chains[1].1).await, 200);
}

#[tokio::test]
async fn on_two_postgres_replicas_revocations_never_fail_while_sessions_are_refreshed() {
    let deployment = Deployment::start(TestDb::postgres().await, 2, &[]).await;
    let admin = deployment
        .login(deployment.changes(), "root", "root-pass-phrase")
        .await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    deployment.add_user("carol", "pass-phrase-0");
    let password = Arc::new(Mutex::new("pass-phrase-0".to_owned()));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    // Eight clients of carol refresh in chains, alternating replicas, logging in again
    // whenever a revocation ends their session.
    let urls: Vec<String> = deployment.replicas.iter().map(|r| r.at("/token")).collect();
    let churn: Vec<_> = (0..8)
        .map(|i| {
            let (urls, password, stop, failures) = (
                urls.clone(),
                password.clone(),
                stop.clone(),
                failures.clone(),
            );
            tokio::spawn(async move {
                let client = Client::new();
                let mut current: Option<String> = None;
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let url = &urls[n % urls.len()];
                    let resp = match &current {
                        Some(token) => client
                            .post(url)
                            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
                            .send()
                            .await
                            .unwrap(),
                        None => {
                            let pw = password.lock().unwrap().clone();
                            client
                                .post(url)
                                .form(&[("username", "carol"), ("password", pw.as_str())])
                                .send()
                                .await
                                .unwrap()
                        }
                    };
                    let status = resp.status().as_u16();
                    if status >= 500 {
                        let body = resp.text().await.unwrap();
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{status} from {url}: {body}"));
                        current = None;
                        continue;
                    }
                    current = if status == 200 {
                        let body: Value = resp.json().await.unwrap();
                        body["refresh_token"].as_str().map(str::to_owned)
                    } else {
                        None
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for round in 1..=12 {
        let new_password = format!("pass-phrase-{round}");
        let path = "/admin/users/carol";
        let status = deployment
            .send(
                reqwest::Method::PATCH,
                path,
                &admin,
                json!({"password": new_password}),
            )
            .await;
        assert_eq!(status, 200, "password change {round}");
        *password.lock().unwrap() = new_password;
        let out = gatehouse(&deployment.db, &["user", "revoke", "carol"], "");
        assert!(
            out.status.success(),
            "revoke {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in churn {
        task.await.unwrap();
    }
    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());
    for replica in &deployment.replicas {
        assert!(!replica.log().contains("ERROR"), "{}", replica.log());
    }
}
