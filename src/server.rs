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

use std::{convert::Infallible, future::Future, io, sync::Arc, time::Duration};

use bytes::Bytes;

use http_body_util::combinators::BoxBody;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use poem::{
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
    Endpoint, Request, Response,
};
use tokio::net::TcpListener;

/// Request line plus headers, the whole block: 8 KiB, what nginx and most proxies allow.
pub const MAX_HEADER_BLOCK_BYTES: usize = 8 * 1024;

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
        .max_header_size(MAX_HEADER_BLOCK_BYTES);
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
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
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
