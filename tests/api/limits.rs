//! Transport limits: the header block, and clients too slow to send a request.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{spawn_app, spawn_app_with};

/// A `GET /users/me/` whose request line and headers are exactly `len` bytes, ending in
/// `Connection: close` so the server closes after answering.
fn request_head_of(len: usize) -> String {
    let start = "GET /users/me/ HTTP/1.1\r\nHost: gatehouse\r\nConnection: close\r\nX-Pad: ";
    let end = "\r\n\r\n";
    format!("{start}{}{end}", "p".repeat(len - start.len() - end.len()))
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

#[tokio::test]
async fn header_block_of_8_kib_is_served_and_one_byte_more_is_431() {
    let app = spawn_app().await;
    let at_limit = app.raw_exchange(request_head_of(8 * 1024).as_bytes()).await;
    assert_eq!(status_line(&at_limit), "HTTP/1.1 401 Unauthorized");
    assert!(
        at_limit.ends_with(r#"{"detail":"Not authenticated"}"#),
        "{at_limit}"
    );

    let over = app
        .raw_exchange(request_head_of(8 * 1024 + 1).as_bytes())
        .await;
    assert_eq!(
        status_line(&over),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

#[tokio::test]
async fn bearer_token_too_big_for_the_header_block_is_431_not_decoded() {
    let app = spawn_app().await;
    let token = "a".repeat(8 * 1024);
    let resp = app
        .get("/users/me/", Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(resp.status(), 431);
}

/// Sends `prefix`, then one byte of `trickle` every 200 ms; returns how long the server
/// took to close the connection, and what it answered.
async fn trickle(address: &str, prefix: &str, trickle: &str) -> (Duration, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let start = Instant::now();
    stream.write_all(prefix.as_bytes()).await.unwrap();
    for byte in trickle.bytes().cycle() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(&[byte]).await.is_err() || start.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    (
        start.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

#[tokio::test]
async fn client_trickling_its_headers_is_cut_off_at_the_timeout() {
    let app = spawn_app_with(|s| s.client_timeout_secs = 1).await;
    let (elapsed, _) = trickle(
        app.host_port(),
        "GET /users/me/ HTTP/1.1\r\nHost: gatehouse\r\n",
        "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
    )
    .await;
    // The write fails once the server has hung up; 8 s would mean it never did.
    assert!(
        elapsed < Duration::from_secs(5),
        "cut off after {elapsed:?}"
    );
}

#[tokio::test]
async fn client_trickling_its_body_gets_408_and_the_connection_closes() {
    let app = spawn_app_with(|s| s.client_timeout_secs = 1).await;
    let (elapsed, answer) = trickle(
        app.host_port(),
        "POST /token HTTP/1.1\r\nHost: gatehouse\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=",
        "j",
    )
    .await;
    assert!(
        elapsed < Duration::from_secs(5),
        "cut off after {elapsed:?}"
    );
    assert_eq!(status_line(&answer), "HTTP/1.1 408 Request Timeout");
    assert!(answer.to_ascii_lowercase().contains("connection: close"));
    assert!(
        answer.ends_with(r#"{"detail":"Request timeout"}"#),
        "{answer}"
    );
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_timeout() {
    let app = spawn_app_with(|s| s.client_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.host_port()).await.unwrap();
    stream
        .write_all(b"GET /users/me/ HTTP/1.1\r\nHost: gatehouse\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "still open after 5 s");
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 401 Unauthorized"));
}

/// The head and body of the last answer in `raw`, with the head's header names lower-cased.
fn last_answer(raw: &str) -> (String, Vec<(String, String)>, String) {
    let start = raw.rfind("HTTP/1.1 ").expect("an answer");
    let (head, body) = raw[start..].split_once("\r\n\r\n").expect("a whole head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// `answer` is `status` with `{"detail": detail}`, the security headers and `Connection: close`.
fn assert_json_error_with_security_headers(answer: &str, status: &str, detail: &str) {
    let (status_line, headers, body) = last_answer(answer);
    assert_eq!(status_line, status, "{answer}");
    let body_json = format!(r#"{{"detail":"{detail}"}}"#);
    assert_eq!(body, body_json, "{answer}");
    let length = body_json.len().to_string();
    for expected in [
        ("content-type", "application/json"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("connection", "close"),
        ("content-length", length.as_str()),
    ] {
        assert!(
            headers
                .iter()
                .any(|(n, v)| (n.as_str(), v.as_str()) == expected),
            "{expected:?} missing: {answer}"
        );
    }
    assert!(headers.iter().any(|(n, _)| n == "date"), "{answer}");
}

#[tokio::test]
async fn header_block_over_8_kib_gets_a_json_431_with_the_security_headers() {
    let app = spawn_app().await;
    let over = app
        .raw_exchange(request_head_of(8 * 1024 + 1).as_bytes())
        .await;
    assert_json_error_with_security_headers(
        &over,
        "HTTP/1.1 431 Request Header Fields Too Large",
        "Request header fields too large",
    );
    // Far over the limit, and without the end of the head ever arriving.
    let mut endless = "GET / HTTP/1.1\r\nHost: gatehouse\r\nX-Pad: ".to_owned();
    endless.push_str(&"p".repeat(64 * 1024));
    let answer = app.raw_exchange(endless.as_bytes()).await;
    assert_json_error_with_security_headers(
        &answer,
        "HTTP/1.1 431 Request Header Fields Too Large",
        "Request header fields too large",
    );
    // The limit itself is unchanged: exactly 8 KiB is served.
    let at_limit = app.raw_exchange(request_head_of(8 * 1024).as_bytes()).await;
    assert_eq!(status_line(&at_limit), "HTTP/1.1 401 Unauthorized");
}

#[tokio::test]
async fn malformed_requests_get_a_json_400_with_the_security_headers() {
    let app = spawn_app().await;
    for malformed in [
        "GARBAGE\r\n\r\n",
        "GET /users/me/ HTTP/1.1\r\nHost: gatehouse\r\nNo colon here\r\n\r\n",
        "GET /users/me/ HTTP/9.9\r\nHost: gatehouse\r\n\r\n",
        "G\u{1}T / HTTP/1.1\r\n\r\n",
    ] {
        let answer = app.raw_exchange(malformed.as_bytes()).await;
        assert_json_error_with_security_headers(&answer, "HTTP/1.1 400 Bad Request", "Bad Request");
    }
}

#[tokio::test]
async fn a_malformed_request_after_a_good_one_leaves_the_good_answer_untouched() {
    let app = spawn_app().await;
    let answer = app
        .raw_exchange(b"GET /nowhere HTTP/1.1\r\nHost: gatehouse\r\n\r\nGARBAGE\r\n\r\n")
        .await;
    let first = r#"{"detail":"Not Found"}"#;
    assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
    let end_of_first = answer.find(first).expect("the 404's body") + first.len();
    assert_eq!(
        answer[..end_of_first].matches("HTTP/1.1 ").count(),
        1,
        "{answer}"
    );
    assert_json_error_with_security_headers(
        &answer[end_of_first..],
        "HTTP/1.1 400 Bad Request",
        "Bad Request",
    );
}
