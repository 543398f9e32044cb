//! A real SMTP server for the tests: a small sink on a TCP port that lettre talks to as
//! to any relay (never a mock transport). It keeps every message it accepts, can be taken
//! down (connections refused) and brought up again on the same port, and can refuse
//! recipients with a 4xx (`set_refusing`, or an address containing `tempfail`) or a 5xx
//! (an address containing `reject`).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use gatehouse::{
    app::App,
    config::{PublicUrl, ServeArgs, Settings},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpSocket},
    task::JoinHandle,
};

use crate::helpers::{spawn_app_with, TestApp};

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<String>>,
    refusing: AtomicBool,
}

pub struct SmtpSink {
    pub port: u16,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

fn listener(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(([127, 0, 0, 1], port).into())?;
    socket.listen(64)
}

impl SmtpSink {
    /// A sink listening on a free port.
    pub async fn start() -> Self {
        let listener = listener(0).expect("bind the SMTP sink");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared::default());
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Self {
            port,
            shared,
            server: Some(server),
        }
    }

    /// A port where nothing listens yet, for a relay that starts down.
    pub fn down() -> Self {
        let port = listener(0)
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        Self {
            port,
            shared: Arc::default(),
            server: None,
        }
    }

    /// `SMTP_URL` of this sink.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops listening: connections are refused until [`Self::up`].
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        self.stop();
        let started = Instant::now();
        let listener = loop {
            match listener(self.port) {
                Ok(l) => break l,
                Err(e) if started.elapsed() < Duration::from_secs(5) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rebind the SMTP sink: {e}"),
            }
        };
        self.server = Some(tokio::spawn(serve(listener, Arc::clone(&self.shared))));
    }

    /// Answer `451` to every recipient while `refusing`.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Every message accepted so far, as received.
    pub fn messages(&self) -> Vec<String> {
        self.shared.messages.lock().expect("lock").clone()
    }

    /// The messages once there are at least `n` (within `limit`), else a failed test.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                started.elapsed() < limit,
                "{} of {n} mails arrived within {limit:?}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let _ = write.write_all(b"220 sink ESMTP\r\n").await;
            while let Ok(Some(line)) = lines.next_line().await {
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let refusing = shared.refusing.load(Ordering::SeqCst);
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                    "RCPT" if refusing || line.contains("tempfail") => {
                        b"451 4.3.0 try again later\r\n"
                    }
                    "RCPT" if line.contains("reject") => b"550 5.1.1 no such user\r\n",
                    "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                    "DATA" => {
                        let _ = write.write_all(b"354 end with .\r\n").await;
                        let mut raw = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            raw.push_str(l.strip_prefix('.').unwrap_or(&l));
                            raw.push_str("\r\n");
                        }
                        shared.messages.lock().expect("lock").push(raw);
                        b"250 2.0.0 queued\r\n"
                    }
                    "QUIT" => {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    }
                    _ => b"502 5.5.2 not implemented\r\n",
                };
                if write.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A header of a received mail.
pub fn header<'m>(message: &'m str, name: &str) -> Option<&'m str> {
    let head = &message[..message.find("\r\n\r\n").unwrap_or(message.len())];
    head.split("\r\n")
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

/// A received mail's parts, decoded (quoted-printable): `(text, html)`.
pub fn bodies(message: &str) -> (String, String) {
    let part = |content_type: &str| {
        let start = message
            .find(&format!("Content-Type: {content_type}"))
            .unwrap_or_else(|| panic!("no {content_type} part in {message}"));
        let rest = &message[start..];
        let body = &rest[rest.find("\r\n\r\n").expect("part body") + 4..];
        let body = &body[..body.find("\r\n--").unwrap_or(body.len())];
        let decoded = quoted_printable::decode(body, quoted_printable::ParseMode::Robust)
            .expect("quoted-printable");
        String::from_utf8(decoded).expect("utf-8")
    };
    (part("text/plain"), part("text/html"))
}

/// The `token` of the first link to `path` in a mail's text, as a person would copy it.
pub fn token_in(message: &str, path: &str) -> String {
    let (text, _) = bodies(message);
    let link = text
        .split_whitespace()
        .find(|w| w.contains(&format!("{path}?token=")))
        .unwrap_or_else(|| panic!("no {path} link in {text}"));
    link.rsplit("token=").next().expect("token").to_owned()
}

/// The public URL the test apps' links start with.
pub const PUBLIC_URL: &str = "https://accounts.example.com/auth";

/// Mail settings for an app: through `sink`, from `MAIL_FROM`, links under [`PUBLIC_URL`],
/// retries every second.
pub fn mail_through(settings: &mut Settings, sink: &SmtpSink) {
    settings.smtp_url = Some(gatehouse::mail::SmtpUrl::parse(&sink.url()));
    settings.mail_from = Some(
        "gatehouse <noreply@accounts.example.com>"
            .parse()
            .expect("from"),
    );
    settings.public_url = Some(PublicUrl::parse(PUBLIC_URL).expect("public url"));
    settings.mail_retry_max_secs = 1;
}

/// An app (demo users, signup open) whose mail goes to `sink`, with `configure` applied.
pub async fn app_mailing_to(sink: &SmtpSink, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|settings| {
        mail_through(settings, sink);
        configure(settings);
    })
    .await
}

/// An app started without `--demo` (so without a mail fallback), on `settings`.
pub async fn start_without_demo(
    settings: Settings,
) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let serve = ServeArgs {
        bind: "127.0.0.1:0".parse().expect("address"),
        demo: false,
    };
    let app = App::build(&settings, &serve).await.expect("app starts");
    let address = format!("http://{}", app.local_addr());
    (address, tokio::spawn(app.run_until_stopped()))
}
