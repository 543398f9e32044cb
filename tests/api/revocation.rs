//! Revocation is never late: each way a token stops being good is refused from the very
//! next request after the change returns, while the server is busy serving from its
//! fastest path (on SQLite, the direct read of `db::hot_reads` with its connections and
//! statement warm), and whether the change came through the API or through the CLI
//! writing the database file directly.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc,
};

use reqwest::Client;
use serde_json::Value;
use tokio::{runtime::Handle, task::block_in_place};

use crate::{
    cli::gatehouse,
    helpers::{ServingBinary, TestDb},
};

/// The served binary on a SQLite file, with `--demo` users and these users added by the
/// CLI: each holds `me items` and has the password `pass-phrase-<name>`.
async fn serve_with(users: &[&str]) -> (TestDb, ServingBinary) {
    let db = TestDb::sqlite();
    for user in users {
        let add = gatehouse(
            &db,
            &["user", "add", user],
            &format!("pass-phrase-{user}\n"),
        );
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
    }
    let server = ServingBinary::start(&db.url, &["serve", "--demo"], &[]).await;
    (db, server)
}

/// Access and refresh token of a new session of `user`, added by [`serve_with`].
async fn session(server: &ServingBinary, user: &str) -> (String, String) {
    login(server, user, &format!("pass-phrase-{user}")).await
}

async fn login(server: &ServingBinary, user: &str, password: &str) -> (String, String) {
    let resp = server.login(&Client::new(), user, password).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn get(client: &Client, server: &ServingBinary, path: &str, token: &str) -> u16 {
    answer(client, server, path, token).await.0
}

/// Status and `detail` of `GET path` with `token`.
async fn answer(client: &Client, server: &ServingBinary, path: &str, token: &str) -> (u16, String) {
    let resp = client
        .get(server.at(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or_default();
    (
        status,
        body["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A token no longer good: 401, as FastAPI answers it.
const REVOKED: (u16, &str) = (401, "Could not validate credentials");
/// A token whose user no longer holds a scope the operation needs (FastAPI's scopes
/// chapter answers it 401 too).
const SCOPE_GONE: (u16, &str) = (401, "Not enough permissions");

fn owned((status, detail): (u16, &str)) -> (u16, String) {
    (status, detail.to_owned())
}

/// Requests from another user's session, as fast as they go, until stopped: the server
/// serves every check from warm connections while the change is made.
struct Load {
    running: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(server: &ServingBinary, token: &str) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let served = Arc::new(AtomicU64::new(0));
        let tasks = (0..4)
            .map(|_| {
                let (running, served) = (Arc::clone(&running), Arc::clone(&served));
                let (url, token, client) =
                    (server.at("/users/me/"), token.to_owned(), Client::new());
                tokio::spawn(async move {
                    while running.load(Ordering::Relaxed) {
                        let resp = client.get(&url).bearer_auth(&token).send().await.unwrap();
                        assert_eq!(resp.status(), 200, "the other session is unaffected");
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Self {
            running,
            served,
            tasks,
        }
    }

    async fn stop(self) -> u64 {
        self.running.store(false, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        self.served.load(Ordering::Relaxed)
    }
}

/// Runs `change` to its end, from the synchronous change of [`refused_right_after`].
fn block_on<T>(change: impl std::future::Future<Output = T>) -> T {
    block_in_place(|| Handle::current().block_on(change))
}

/// Warms the victim's own path, then checks that `change` (made while the load is on)
/// refuses the very next request on `path` as `refused`, and every one after.
async fn refused_right_after(
    server: &ServingBinary,
    token: &str,
    path: &str,
    refused: (u16, &str),
    change: impl FnOnce(),
) {
    let client = Client::new();
    for _ in 0..50 {
        assert_eq!(
            get(&client, server, path, token).await,
            200,
            "{path} before the change"
        );
    }
    change();
    for nth in ["the next request", "and the one after"] {
        assert_eq!(
            answer(&client, server, path, token).await,
            owned(refused),
            "{path}: {nth}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_written_by_the_cli_refuse_the_next_request_while_the_server_is_busy() {
    let users = ["dis", "pwd", "scp", "rev"];
    let (db, server) = serve_with(&users).await;
    let load = Load::start(&server, &demo_token(&server).await);
    let cli = |args: &[&str], stdin: &str| {
        let out = gatehouse(&db, args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    for (user, args, stdin, path, refused) in [
        (
            "dis",
            &["user", "disable", "dis"][..],
            "",
            "/users/me/",
            REVOKED,
        ),
        (
            "pwd",
            &["user", "passwd", "pwd"][..],
            "a new password\n",
            "/users/me/",
            REVOKED,
        ),
        (
            "scp",
            &["user", "scopes", "scp", "--set", "me"][..],
            "",
            "/users/me/items/",
            SCOPE_GONE,
        ),
        (
            "rev",
            &["user", "revoke", "rev"][..],
            "",
            "/users/me/",
            REVOKED,
        ),
    ] {
        let (token, refresh) = session(&server, user).await;
        refused_right_after(&server, &token, path, refused, || cli(args, stdin)).await;
        if refused == REVOKED {
            let status = refresh_status(&server, &refresh).await;
            assert_eq!(status, 400, "{user}: the sessions ended too");
        } else {
            let status = get(&Client::new(), &server, "/users/me/", &token).await;
            assert_eq!(status, 200, "{user}: `me` is still held");
        }
    }

    assert!(load.stop().await > 0, "the load ran throughout");
}

/// An access token of johndoe, a `--demo` user (password "secret", every scope).
async fn demo_token(server: &ServingBinary) -> String {
    login(server, "johndoe", "secret").await.0
}

async fn refresh_status(server: &ServingBinary, refresh: &str) -> u16 {
    Client::new()
        .post(server.at("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_through_the_api_refuse_the_next_request_while_the_server_is_busy() {
    let users = ["ended", "revoked", "apidis", "apipwd", "apiscp"];
    let (_db, server) = serve_with(&users).await;
    let admin = demo_token(&server).await;
    let load = Load::start(&server, &admin);
    let client = Client::new();

    // An ended session: from another session of the same user.
    let (ended, _) = session(&server, "ended").await;
    let (other, _) = session(&server, "ended").await;
    let sessions: Value = client
        .get(server.at("/users/me/sessions/"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let victim = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let end = |c: &Client| {
        let req = c
            .delete(server.at(&format!("/users/me/sessions/{victim}")))
            .bearer_auth(&other);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    refused_right_after(&server, &ended, "/users/me/", REVOKED, || {
        block_on(async { assert_eq!(end(&client).await, 204) })
    })
    .await;

    // A session revoked by its refresh token (RFC 7009).
    let (revoked, refresh) = session(&server, "revoked").await;
    refused_right_after(&server, &revoked, "/users/me/", REVOKED, || {
        block_on(async {
            let resp = client
                .post(server.at("/revoke"))
                .form(&[("token", refresh.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        })
    })
    .await;

    // The admin API: disable, a new password, fewer scopes.
    for (user, body, path, refused) in [
        (
            "apidis",
            serde_json::json!({"disabled": true}),
            "/users/me/",
            REVOKED,
        ),
        (
            "apipwd",
            serde_json::json!({"password": "another password"}),
            "/users/me/",
            REVOKED,
        ),
        (
            "apiscp",
            serde_json::json!({"scopes": ["me"]}),
            "/users/me/items/",
            SCOPE_GONE,
        ),
    ] {
        let (token, _) = session(&server, user).await;
        refused_right_after(&server, &token, path, refused, || {
            block_on(async {
                let resp = client
                    .patch(server.at(&format!("/admin/users/{user}")))
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{user}");
            })
        })
        .await;
    }

    assert!(load.stop().await > 0);
}
