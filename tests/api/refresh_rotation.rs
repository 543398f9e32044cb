//! Rotation under stress: concurrent refreshes of one refresh token, on SQLite and on
//! PostgreSQL (the database decides, with a conditional update, so the outcome holds
//! across replicas too), and `kill -9` of the server in the middle of a refresh.

use std::{collections::HashSet, time::Duration};

use futures_util::future::join_all;
use serde_json::Value;

use crate::{
    helpers::{start, ServingBinary, TestDb},
    sessions::{login_pair, pair, refresh},
};

const PARALLEL: usize = 16;

/// What `PARALLEL` simultaneous refreshes of one token gave.
#[derive(Debug)]
struct Outcome {
    /// 200s, and the distinct refresh tokens they carried.
    answered: usize,
    distinct_refresh_tokens: usize,
    /// Whether the session still works afterwards.
    session_live: bool,
}

async fn race(db: &TestDb, reuse_interval_secs: u64) -> Outcome {
    let mut settings = db.settings();
    settings.refresh_reuse_interval_secs = reuse_interval_secs;
    let app = start(settings).await;
    let (access, token) = login_pair(&app, "johndoe", "secret").await;
    let answers = join_all((0..PARALLEL).map(|_| refresh(&app, &token))).await;
    let mut tokens = HashSet::new();
    let mut answered = 0;
    for resp in answers {
        match resp.status().as_u16() {
            200 => {
                answered += 1;
                let body: Value = resp.json().await.unwrap();
                tokens.insert(pair(body).1);
            }
            400 => {
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["error"], "invalid_grant", "{body}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    let session_live = app.me(&access).await.status() == 200;
    if session_live {
        // The one new refresh token works: nothing was lost.
        let current = tokens.iter().next().expect("a new refresh token");
        assert_eq!(refresh(&app, current).await.status(), 200);
    }
    Outcome {
        answered,
        distinct_refresh_tokens: tokens.len(),
        session_live,
    }
}

async fn races_end_as_specified(db: TestDb, backend: &str) {
    let within = race(&db, 10).await;
    println!(
        "{backend}, reuse interval 10 s: {PARALLEL} refreshes attempted, {} answered 200, \
         {} distinct new pair(s), session ended: {}",
        within.answered, within.distinct_refresh_tokens, !within.session_live
    );
    assert_eq!(within.answered, PARALLEL, "{within:?}");
    assert_eq!(within.distinct_refresh_tokens, 1, "{within:?}");
    assert!(within.session_live, "{within:?}");

    let outside = race(&db, 0).await;
    println!(
        "{backend}, reuse interval 0 s: {PARALLEL} refreshes attempted, {} answered 200, \
         {} distinct new pair(s), session ended: {}",
        outside.answered, outside.distinct_refresh_tokens, !outside.session_live
    );
    assert_eq!(
        outside.answered, 1,
        "exactly one rotation wins: {outside:?}"
    );
    assert!(
        !outside.session_live,
        "the reuses end the session: {outside:?}"
    );
}

#[tokio::test]
async fn parallel_refreshes_of_one_token_on_sqlite_rotate_once() {
    races_end_as_specified(TestDb::sqlite(), "SQLite").await;
}

#[tokio::test]
async fn parallel_refreshes_of_one_token_on_postgres_rotate_once() {
    races_end_as_specified(TestDb::postgres().await, "PostgreSQL").await;
}

async fn binary_refresh(
    client: &reqwest::Client,
    server: &ServingBinary,
    token: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(server.at("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
}

/// `kill -9` at moments spread over a refresh: after the restart the session is never
/// half-rotated. The old refresh token either still is the current one, or (spent by the
/// killed refresh, presented within the reuse interval) answers the session's current
/// one; either way the token obtained then rotates again, and the login's access token
/// is as valid as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_refresh_never_leaves_a_half_rotated_session() {
    let db = TestDb::new().await;
    let env = [("REFRESH_REUSE_INTERVAL_SECS", "600")];
    let client = reqwest::Client::new();
    let (mut answered_first, mut killed_first) = (0, 0);
    for attempt in 0..12u64 {
        let mut server = ServingBinary::start(&db.url, &["serve", "--demo"], &env).await;
        let body: Value = server
            .login(&client, "johndoe", "secret")
            .await
            .json()
            .await
            .unwrap();
        let (access, old) = pair(body);
        let request = {
            let client = client.clone();
            let url = server.at("/token");
            let old = old.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &old)])
                    .send()
                    .await
            })
        };
        // 0 to 5.5 ms: before, during and after the rotation's transaction.
        tokio::time::sleep(Duration::from_micros(attempt * 500)).await;
        server.kill();
        let answered = request.await.unwrap().ok().filter(|r| r.status() == 200);
        let seen = match answered {
            Some(resp) => resp.json::<Value>().await.ok().map(|b| pair(b).1),
            None => None,
        };

        let server = ServingBinary::start(&db.url, &["serve"], &env).await;
        let resp = binary_refresh(&client, &server, &old).await.unwrap();
        assert_eq!(
            resp.status(),
            200,
            "attempt {attempt}: the old token is usable"
        );
        let (_, current) = pair(resp.json().await.unwrap());
        assert_ne!(current, old, "attempt {attempt}");
        if let Some(seen) = &seen {
            assert_eq!(
                &current, seen,
                "attempt {attempt}: the answered token is current"
            );
        }
        let next = binary_refresh(&client, &server, &current).await.unwrap();
        assert_eq!(
            next.status(),
            200,
            "attempt {attempt}: the current token rotates"
        );
        let me = client
            .get(server.at("/users/me/"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "attempt {attempt}: the session lives");
        if server.log().contains("spent refresh token presented again") {
            panic!("attempt {attempt}: a reuse was detected: {}", server.log());
        }
        if seen.is_some() {
            answered_first += 1;
        } else {
            killed_first += 1;
        }
    }
    println!(
        "kill -9 during a refresh: {answered_first} answered before the kill, {killed_first} killed first"
    );
}
