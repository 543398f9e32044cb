//! Logging: the subscriber, and one structured line per request.
//!
//! Lines are formatted where they happen and written to stderr in batches by a thread of
//! their own (`batch_writer`), so no request waits on a `write(2)`. Nothing is dropped:
//! [`LogGuard`] writes out every pending line before the process exits.
//!
//! Request lines carry method, path, status and latency; never headers, query strings or
//! bodies, which may hold passwords or tokens.
//!
//! Log values may come from clients (a username, a path). Every character of the Unicode
//! categories Cc, Cf, Zl and Zp (`needs_escape`) is written as an escape, so a newline,
//! U+2028 or an ESC byte in one cannot start a forged log line or drive the reader's
//! terminal, and no invisible or reordering character hides what a line says. The text
//! format writes every field through [`Escaped`]; the JSON format's writer is
//! [`JsonEscaped`], since serde_json leaves all but the C0 controls raw.

use std::{fmt::Write as _, io::IsTerminal, time::Instant};

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tracing_subscriber::{
    field::MakeExt,
    fmt::{self, format::debug_fn},
    EnvFilter,
};

mod batch_writer;

/// Lines a writer may hold for its thread before a request waits (back-pressure).
const MAX_PENDING_LINES: usize = 8192;

/// Keeps the log writer running; dropping it writes out every pending line. Hold it until
/// the process is about to exit.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] WriterGuard);

#[allow(dead_code)]
enum WriterGuard {
    Batch(batch_writer::Shutdown),
    Appender(tracing_appender::non_blocking::WorkerGuard),
}

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), `format` is `text` or `json`.
///
/// `GATEHOUSE_LOG_WRITER=appender` (read once, here) writes through tracing-appender's
/// non-blocking writer instead of `batch_writer`: the benchmark's A/B of the two
/// (bench/README.md).
pub fn init(format: &str) -> LogGuard {
    if std::env::var("GATEHOUSE_LOG_WRITER").as_deref() == Ok("appender") {
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .buffered_lines_limit(MAX_PENDING_LINES)
            .thread_name("log-writer")
            .finish(std::io::BufWriter::new(std::io::stderr()));
        install(format, writer);
        LogGuard(WriterGuard::Appender(guard))
    } else {
        let (writer, guard) = batch_writer::BatchWriter::start();
        install(format, writer);
        LogGuard(WriterGuard::Batch(guard))
    }
}

fn install<W>(format: &str, writer: W)
where
    W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests starting several apps) keeps the first subscriber.
    let _ = if format == "json" {
        builder.with_writer(JsonEscaped(writer)).json().try_init()
    } else {
        // The default text fields (`message name=value ...`), each value escaped.
        let fields = debug_fn(|writer, field, value| {
            if field.name() != "message" {
                write!(writer, "{field}=")?;
            }
            write!(Escaped(writer), "{value:?}")
        })
        .delimited(" ");
        builder.with_writer(writer).fmt_fields(fields).try_init()
    };
}

/// Writes through to `W`, with every character `needs_escape` names written as a
/// visible escape (`\n`, `\u{1b}`, `\u{2028}`).
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

/// Characters a log line never carries raw: controls (Cc: newlines, ESC, DEL, U+0085),
/// format characters (Cf: zero-width and bidirectional controls that make a terminal or an
/// editor show text in another order than it was written, CVE-2021-42574) and the line and
/// paragraph separators (Zl, Zp: U+2028, U+2029), which some readers take for line ends.
fn needs_escape(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// The JSON format's writer: each line through to `M`'s writer, with every character
/// `needs_escape` names that serde_json left raw written as a JSON escape (`\u2028`;
/// a surrogate pair beyond the BMP). serde_json has already escaped the C0 controls, and
/// a JSON line has no raw character outside its strings but ASCII, so every character
/// escaped here is inside a string, where the escape reads back as the same character.
pub struct JsonEscaped<M>(pub M);

impl<'a, M: fmt::MakeWriter<'a>> fmt::MakeWriter<'a> for JsonEscaped<M> {
    type Writer = JsonEscapedLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        JsonEscapedLine(self.0.make_writer())
    }
}

pub struct JsonEscapedLine<W>(W);

impl<W: std::io::Write> std::io::Write for JsonEscapedLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Below DEL, serde_json has escaped all there is to escape: most lines end here.
        if buf.iter().all(|b| *b < 0x7f) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        // The subscriber writes each line whole; a line that is not UTF-8 (it always is)
        // would keep its invalid bytes as they are.
        let mut escaped = Vec::with_capacity(buf.len());
        for chunk in buf.utf8_chunks() {
            let text = chunk.valid();
            let mut rest = text;
            while let Some(at) = rest.find(|c| needs_escape(c) && u32::from(c) >= 0x20) {
                escaped.extend_from_slice(&rest.as_bytes()[..at]);
                let c = rest[at..].chars().next().unwrap_or_default();
                for unit in c.encode_utf16(&mut [0; 2]) {
                    escaped.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
                rest = &rest[at + c.len_utf8()..];
            }
            escaped.extend_from_slice(rest.as_bytes());
            escaped.extend_from_slice(chunk.invalid());
        }
        self.0.write_all(&escaped)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
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

    use super::{Escaped, JsonEscapedLine};

    #[test]
    fn control_format_and_separator_characters_are_written_as_escapes() {
        let mut out = String::new();
        write!(
            Escaped(&mut out),
            "x\nFORGED\r\u{1b}[31m\u{7f}\u{202e}é\\ ok\u{2028}\u{85}\u{200b}\u{e0001} \u{a0}"
        )
        .unwrap();
        assert_eq!(
            out,
            "x\\nFORGED\\r\\u{1b}[31m\\u{7f}\\u{202e}é\\ ok\\u{2028}\\u{85}\\u{200b}\\u{e0001} \u{a0}"
        );
    }

    #[test]
    fn json_lines_get_json_escapes_and_keep_their_line_end() {
        use std::io::Write as _;
        let mut out = Vec::new();
        let line = "{\"user\":\"a\u{2029}é\u{7f}\u{feff}\u{e0001}\\n\"}\n";
        JsonEscapedLine(&mut out)
            .write_all(line.as_bytes())
            .unwrap();
        let written = String::from_utf8(out).unwrap();
        assert_eq!(
            written,
            "{\"user\":\"a\\u2029é\\u007f\\ufeff\\udb40\\udc01\\n\"}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(parsed["user"], "a\u{2029}é\u{7f}\u{feff}\u{e0001}\n");
    }
}
