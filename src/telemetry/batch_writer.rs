//! The log's writer: lines are appended to a buffer in memory where they are made, and a
//! thread of its own writes the buffer out to stderr in batches.
//!
//! A request never waits on a `write(2)`, and neither side wakes the other per line: the
//! writer thread sleeps until a line arrives in an empty buffer, gathers lines for
//! [`BATCH_WINDOW`], and writes them with one call. Nothing is dropped: past
//! [`MAX_PENDING`] bytes a request waits for the writer to catch up, and [`Shutdown`] writes
//! out every line still pending before the process exits.
//!
//! Why not tracing-appender's non-blocking writer, which keeps the same promises: it hands
//! each line to its thread through a channel and wakes the thread for it, and on
//! `GET /users/me/` that cost 12 to 30% more server CPU per request than this writer, in
//! every round of four A/B runs (bench/README.md; `GATEHOUSE_LOG_WRITER=appender` selects
//! it to measure again).

use std::{
    io::{self, Write},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread,
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer gathers lines before writing them out.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// Bytes pending past which a line waits for the writer instead of growing the buffer.
const MAX_PENDING: usize = 4 << 20;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closing: bool,
    /// The writer thread has exited (closed, or failed to start): lines are written directly.
    gone: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when a line lands in an empty buffer, and at shutdown.
    arrived: Condvar,
    /// Signalled after each batch is written.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the subscriber writes: hands each line to the writer thread.
#[derive(Clone)]
pub struct BatchWriter(Arc<Shared>);

/// Stops the writer thread once every pending line is written; see [`BatchWriter::start`].
pub struct Shutdown {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

impl BatchWriter {
    /// Starts the writer thread. Keep the [`Shutdown`] until the process is about to exit;
    /// dropping it writes out what is pending and stops the thread.
    pub fn start() -> (Self, Shutdown) {
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_batches(&worker, &mut io::stderr()))
            .ok();
        if thread.is_none() {
            shared.lock().gone = true;
        }
        (Self(Arc::clone(&shared)), Shutdown { shared, thread })
    }
}

fn write_batches(shared: &Shared, out: &mut impl Write) {
    let mut batch = Vec::new();
    let mut pending = shared.lock();
    loop {
        while pending.bytes.is_empty() && !pending.closing {
            pending = shared
                .arrived
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if pending.bytes.is_empty() {
            pending.gone = true;
            return;
        }
        if !pending.closing && pending.bytes.len() < MAX_PENDING / 2 {
            drop(pending);
            thread::sleep(BATCH_WINDOW);
            pending = shared.lock();
        }
        std::mem::swap(&mut batch, &mut pending.bytes);
        drop(pending);
        // A log that cannot be written (a closed stderr) has nowhere to report it.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        shared.drained.notify_all();
        pending = shared.lock();
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.arrived.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One line's writer.
pub struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = self.0.lock();
        while pending.bytes.len() >= MAX_PENDING && !pending.gone {
            pending = self
                .0
                .drained
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if pending.gone {
            drop(pending);
            return io::stderr().write(buf);
        }
        let first = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(buf);
        drop(pending);
        if first {
            self.0.arrived.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_written_once_in_order_by_shutdown() {
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let thread = thread::spawn(move || {
            struct Sink(Arc<Mutex<Vec<u8>>>);
            impl Write for Sink {
                fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                    self.0.lock().unwrap().extend_from_slice(buf);
                    Ok(buf.len())
                }
                fn flush(&mut self) -> io::Result<()> {
                    Ok(())
                }
            }
            write_batches(&worker, &mut Sink(sink));
        });
        let writer = BatchWriter(Arc::clone(&shared));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                thread::spawn(move || {
                    for i in 0..5000 {
                        // As the subscriber does: a whole line in one write.
                        let line = format!("{t} {i}\n");
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        drop(Shutdown {
            shared,
            thread: Some(thread),
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        for t in 0..4 {
            let seen: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(seen, (0..5000).collect::<Vec<_>>(), "thread {t}");
        }
    }
}
