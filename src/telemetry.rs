//! Logging: the subscriber, and one structured line per request.
//!
//! Lines are formatted where they happen and written to stderr in batches by a thread of
//! their own ([`batch_writer`]), so no request waits on a `write(2)`. Nothing is dropped:
//! [`LogGuard`] writes out every pending line before the process exits.
//!
//! Request lines carry method, path, status and latency; never headers, query strings or
//! bodies, which may hold passwords or tokens.
//!
//! Log values may come from clients (a username, a path). In the text format every field
//! is written through [`Escaped`], so a newline or an ESC byte in one cannot start a forged
//! log line or drive the reader's terminal; the JSON format escapes them as JSON does.

use std::{fmt::Write as _, io::IsTerminal, time::Instant};

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tracing_subscriber::{
    field::MakeExt,
    fmt::{self, format::debug_fn},
    EnvFilter,
};

mod batch_writer;

/// Keeps the log writer running; dropping it writes out every pending line. Hold it until
/// the process is about to exit.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] batch_writer::Shutdown);

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), `format` is `text` or `json`.
pub fn init(format: &str) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = batch_writer::BatchWriter::start();
    let builder = fmt::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests starting several apps) keeps the first subscriber.
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        // The default text fields (`message name=value ...`), each value escaped.
        let fields = debug_fn(|writer, field, value| {
            if field.name() != "message" {
                write!(writer, "{field}=")?;
            }
            write!(Escaped(writer), "{value:?}")
        })
        .delimited(" ");
        builder.fmt_fields(fields).try_init()
    };
    LogGuard(guard)
}

/// Writes through to `W`, with control characters (newlines and ESC included) and the
/// Unicode controls that reorder text written as visible escapes (`\n`, `\u{1b}`).
pub struct Escaped<W>(pub W);

impl<W: std::fmt::Write> std::fmt::Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(self.0, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// Control characters, and the bidirectional formatting characters that make a terminal or
/// an editor show text in another order than it was written (CVE-2021-42574).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Middleware logging one line per request.
pub struct RequestLog;

impl<E: Endpoint> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestLogEndpoint { inner }
    }
}

pub struct RequestLogEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let resp = match self.inner.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        tracing::info!(
            target: "gatehouse::request",
            %method,
            %path,
            status = resp.status().as_u16(),
            latency_us = start.elapsed().as_micros() as u64,
            "request"
        );
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::Escaped;

    #[test]
    fn control_and_bidi_characters_are_written_as_escapes() {
        let mut out = String::new();
        write!(
            Escaped(&mut out),
            "x\nFORGED\r\u{1b}[31m\u{7f}\u{202e}é\\ ok"
        )
        .unwrap();
        assert_eq!(out, "x\\nFORGED\\r\\u{1b}[31m\\u{7f}\\u{202e}é\\ ok");
    }
}
