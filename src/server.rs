//! The HTTP/1.1 connection loop, with the limits poem's `Server` does not expose.
//!
//! poem's `Server` leaves hyper without a timer and with a ~400 KiB header buffer, so a
//! client could send an endless header block, or keep a connection open by trickling one
//! header byte at a time. Here hyper gets both limits: a header block over
//! [`MAX_HEADER_BLOCK_BYTES`] answers `431`, and a client that takes longer than the
//! configured timeout to send one (or to send anything on an idle keep-alive connection)
//! is disconnected. Request bodies have their own deadline where they are read
//! (`api::form`). Everything else is poem: the endpoint sees the same `Request` it would
//! under `poem::Server`.
//!
//! hyper answers a request it cannot parse itself (`431` past the header limit, `400` for
//! a malformed head), with an empty body and none of our headers, and offers no hook to
//! change that answer. `OwnAnswers` therefore rewrites it on its way out: with
//! `writev(false)` hyper hands each write as one buffer, its own answer is the last thing
//! it writes on the connection, and it is the only head without the
//! [`SECURITY_HEADERS`] that every answer of ours carries. The limit itself stays
//! hyper's, exact to the byte.

use std::{
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
    time::Duration,
};

use bytes::Bytes;

use http_body_util::combinators::BoxBody;
use hyper::{body::Incoming, server::conn::http1, service::service_fn, StatusCode};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use poem::{
    http::uri::Scheme,
    middleware::SetHeader,
    web::{LocalAddr, RemoteAddr},
    Endpoint, Request, Response,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
};

/// Request line plus headers, the whole block: 8 KiB, what nginx and most proxies allow.
pub const MAX_HEADER_BLOCK_BYTES: usize = 8 * 1024;

/// Headers every response carries, hyper's own error answers included.
pub const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
];

/// Middleware adding the [`SECURITY_HEADERS`] to every response of the endpoint it wraps;
/// errors must have become responses inside it (`SetHeader` passes an error through).
pub fn security_headers() -> SetHeader {
    SECURITY_HEADERS
        .iter()
        .fold(SetHeader::new(), |set, (name, value)| {
            set.overriding(*name, *value)
        })
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest a client may take to send a request's header block, and longest a
    /// keep-alive connection may sit idle.
    pub header_read_timeout: Duration,
    /// How long in-flight requests get to finish after the shutdown signal.
    pub shutdown_grace: Duration,
}

/// Serves `endpoint` on `listener` until `shutdown` completes; then stops accepting (new
/// connections are refused), lets in-flight requests finish for up to
/// `limits.shutdown_grace`, and returns.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    let endpoint = Arc::new(endpoint);
    let local = LocalAddr(listener.local_addr()?.into());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEADER_BLOCK_BYTES)
        // One buffer per write, so that `OwnAnswers` sees hyper's own answer whole.
        .writev(false);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                // Out of file descriptors or a connection reset before accept: the
                // listener itself is fine, so back off briefly instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small request/response pairs: don't wait to coalesce writes.
        let _ = stream.set_nodelay(true);
        let service = {
            let (endpoint, local) = (endpoint.clone(), local.clone());
            service_fn(move |req: hyper::Request<Incoming>| {
                let endpoint = endpoint.clone();
                let request: Request =
                    (req, local.clone(), RemoteAddr(peer.into()), Scheme::HTTP).into();
                async move {
                    let response: hyper::Response<BoxBody<Bytes, io::Error>> =
                        endpoint.get_response(request).await.into();
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let io = TokioIo::new(OwnAnswers::new(stream));
        let conn = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            // Errors here are the client's doing (reset, timeout, malformed head): hyper
            // has already answered what can be answered.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
            }
        });
    }

    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = limits.shutdown_grace.as_secs(),
            "in-flight requests did not finish in time; closing them"
        );
    }
    Ok(())
}

/// A connection whose writes pass through unchanged, except hyper's own error answer,
/// which leaves as ours would: the [`SECURITY_HEADERS`] and a `{"detail": ...}` body.
struct OwnAnswers<T> {
    inner: T,
    /// The rewritten tail of a write, owed to `inner` before anything else.
    owed: Vec<u8>,
    sent: usize,
}

impl<T> OwnAnswers<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            owed: Vec::new(),
            sent: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> OwnAnswers<T> {
    /// Writes what is owed; ready once all of it is out.
    fn poll_owed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.owed.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.owed[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.owed.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for OwnAnswers<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for OwnAnswers<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_owed(cx))?;
        match hyper_answer_at_end(buf) {
            // Taken whole and owed: flush and shutdown write it out before they proceed.
            Some((start, answer)) => {
                this.owed.extend_from_slice(&buf[..start]);
                this.owed.extend_from_slice(&answer);
                Poll::Ready(Ok(buf.len()))
            }
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_owed(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_owed(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// If `buf` ends with an answer hyper wrote itself (a 4xx or 5xx head with only
/// `connection`, `content-length: 0` and `date`, as hyper writes for a request it cannot
/// parse), where it starts and what to send instead: the same status and date, our
/// headers, and a JSON body.
fn hyper_answer_at_end(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    const END: &[u8] = b"\r\n\r\n";
    if !buf.ends_with(END) {
        return None;
    }
    let start = buf.windows(7).rposition(|w| w == b"HTTP/1.")?;
    let head = std::str::from_utf8(&buf[start..buf.len() - END.len()]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let code: u16 = status_line.get(9..12)?.parse().ok()?;
    let status = StatusCode::from_u16(code).ok()?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let mut date = None;
    let mut empty = false;
    for line in lines {
        match line.split_once(": ")? {
            ("content-length", "0") => empty = true,
            ("connection", _) => {}
            ("date", value) => date = Some(value),
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let detail = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "Request header fields too large",
        _ => status.canonical_reason().unwrap_or("Bad Request"),
    };
    let body = serde_json::json!({ "detail": detail }).to_string();
    let mut answer = format!("{status_line}\r\ncontent-type: application/json\r\n");
    for (name, value) in SECURITY_HEADERS {
        answer.push_str(&format!("{}: {value}\r\n", name.to_ascii_lowercase()));
    }
    answer.push_str(&format!(
        "connection: close\r\ncontent-length: {}\r\n",
        body.len()
    ));
    if let Some(date) = date {
        answer.push_str(&format!("date: {date}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some((start, answer.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::hyper_answer_at_end;

    #[test]
    fn only_hypers_own_error_answer_is_rewritten() {
        let ours = "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\
                    x-content-type-options: nosniff\r\ncontent-length: 22\r\n\r\n\
                    {\"detail\":\"Not Found\"}";
        let hypers = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\
                      date: Mon, 30 Nov 2026 09:27:12 GMT\r\n\r\n";
        let (start, answer) = hyper_answer_at_end(format!("{ours}{hypers}").as_bytes()).unwrap();
        assert_eq!(start, ours.len());
        assert_eq!(
            String::from_utf8(answer).unwrap(),
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
             x-content-type-options: nosniff\r\nx-frame-options: DENY\r\n\
             referrer-policy: no-referrer\r\nconnection: close\r\ncontent-length: 24\r\n\
             date: Mon, 30 Nov 2026 09:27:12 GMT\r\n\r\n{\"detail\":\"Bad Request\"}"
        );
        for untouched in [
            ours.to_owned(),
            // Our own empty answers carry our headers; hyper's 100 Continue is no error.
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: /token\r\ncontent-length: 0\r\n\r\n"
                .to_owned(),
            "HTTP/1.1 400 Bad Request\r\nx-content-type-options: nosniff\r\n\
             content-length: 0\r\n\r\n"
                .to_owned(),
            "HTTP/1.1 100 Continue\r\n\r\n".to_owned(),
        ] {
            assert!(
                hyper_answer_at_end(untouched.as_bytes()).is_none(),
                "{untouched}"
            );
        }
    }
}
