//! The hashing pool: password hashes and verifies run on a few threads of their own, with
//! a bounded queue served fairly per client.
//!
//! Why not tokio's `spawn_blocking`, the framework's way to run blocking work: its pool
//! grows to 512 threads and its queue has no bound. Each argon2 run takes 64 MiB and tens
//! of milliseconds of a core, so a login flood would start hundreds of hashes at once
//! (gigabytes of memory, every login slower) instead of refusing the excess. This pool
//! keeps one thread per core ([`PasswordHasher::cores`]), answers 503 at once when its
//! queue is full ([`HashError::Busy`]), serves queued logins in turn per client so that
//! one address cannot fill it for everyone ([`PasswordHasher::try_reserve`]), skips a
//! login whose client has gone or that waited longer than [`MAX_QUEUE_WAIT`], and lets
//! each thread keep its 64 MiB ([`Scratch`]) while logins are queued.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread,
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use super::password::{hash_password, verify_password_with, Scratch, Verification};

/// Longest a job waits for a hashing thread before it is answered [`HashError::Busy`]
/// instead of run. A full queue (16 per thread) drains in ~1.6 s of argon2 work on an
/// idle machine; under CPU contention it can take several times that, and a login that
/// old is better refused at once (its client may have given up) than hashed late, which
/// would only delay the logins queued behind it.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing queue is full")]
    Busy,
    #[error("password hashing worker is gone")]
    WorkerGone,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

type Job = Box<dyn FnOnce(&mut Scratch) + Send + 'static>;

/// The jobs waiting for a thread, taken in turn per client: one job of each client that
/// has any, round and round, so a client with many logins queued delays another's by at
/// most one verify per client, not by its whole backlog.
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when a job arrives or the pool closes.
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: HashMap<String, VecDeque<Job>>,
    /// Clients with queued jobs, in the order they are next served.
    turns: VecDeque<String>,
    len: usize,
    /// Jobs that may wait when no thread is idle.
    capacity: usize,
    /// Threads waiting for a job: each takes one more without it waiting.
    idle: usize,
    /// Every `PasswordHasher` is gone: threads finish.
    closed: bool,
}

impl QueueState {
    fn push(&mut self, client: &str, job: Job) -> Result<(), HashError> {
        if self.closed {
            return Err(HashError::WorkerGone);
        }
        if self.len >= self.capacity + self.idle {
            return Err(HashError::Busy);
        }
        let queued = self.jobs.entry(client.to_owned()).or_default();
        if queued.is_empty() {
            self.turns.push_back(client.to_owned());
        }
        queued.push_back(job);
        self.len += 1;
        Ok(())
    }

    fn pop(&mut self) -> Option<Job> {
        let client = self.turns.pop_front()?;
        let queued = self.jobs.get_mut(&client)?;
        let job = queued.pop_front()?;
        if queued.is_empty() {
            self.jobs.remove(&client);
        } else {
            self.turns.push_back(client);
        }
        self.len -= 1;
        Some(job)
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panicking job runs outside the lock: the state is never left half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job, waiting for one; `None` once the pool is closed.
    fn next(&self, scratch: &mut Scratch) -> Option<Job> {
        if let Some(job) = self.lock().pop() {
            return Some(job);
        }
        // Idle: give the memory back before waiting, not after.
        scratch.release();
        let mut state = self.lock();
        state.idle += 1;
        let job = loop {
            if let Some(job) = state.pop() {
                break Some(job);
            }
            if state.closed {
                break None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        };
        state.idle -= 1;
        job
    }
}

/// Closes the queue when the last `PasswordHasher` clone is dropped.
struct QueueHandle(Arc<Queue>);

impl Drop for QueueHandle {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

/// Hashes and verifies passwords on `workers` dedicated threads with at most `queue`
/// jobs waiting. Each argon2 run takes 64 MiB and tens of milliseconds of one core, so
/// more workers than cores only adds memory and latency; a full queue answers
/// [`HashError::Busy`] at once instead of letting a login flood pile up.
#[derive(Clone)]
pub struct PasswordHasher {
    queue: Arc<QueueHandle>,
    /// Who holds the [`HashSlot`]s: logins running or waiting for a thread.
    admitted: Arc<Mutex<Admitted>>,
    /// Threads plus queue: how many slots there are.
    capacity: usize,
    /// [`MAX_QUEUE_WAIT`], shorter in tests.
    max_wait: Duration,
    workers: usize,
}

/// The slots taken, in all and per client.
#[derive(Default)]
struct Admitted {
    total: usize,
    by_client: HashMap<String, usize>,
}

/// A login's place in the hashing pool, taken before any of its other work (database
/// lookups included), so that a saturated pool answers 503 at once and cheaply: under a
/// flood the refusals must not eat the CPU the running hashes need. Given back on drop.
pub struct HashSlot {
    hasher: PasswordHasher,
    client: String,
}

impl Drop for HashSlot {
    fn drop(&mut self) {
        let mut admitted = self.hasher.admitted();
        admitted.total -= 1;
        if let Some(held) = admitted.by_client.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                admitted.by_client.remove(&self.client);
            }
        }
    }
}

impl HashSlot {
    /// Checks `password` against `stored`, off the async runtime.
    pub async fn verify(
        self,
        password: SecretString,
        stored: String,
    ) -> Result<Verification, HashError> {
        self.hasher
            .run(&self.client, move |scratch| {
                Ok(verify_password_with(
                    scratch,
                    password.expose_secret(),
                    &stored,
                ))
            })
            .await
    }
}

impl PasswordHasher {
    pub fn new(workers: usize, queue: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let shared = Arc::new(Queue {
            state: Mutex::new(QueueState {
                capacity: queue,
                ..QueueState::default()
            }),
            ready: Condvar::new(),
        });
        let handle = Arc::new(QueueHandle(Arc::clone(&shared)));
        for n in 0..workers {
            let queue = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    let mut scratch = Scratch::default();
                    // The lock is held only to take the next job, never while hashing.
                    while let Some(job) = queue.next(&mut scratch) {
                        job(&mut scratch);
                    }
                })?;
        }
        Ok(Self {
            queue: handle,
            admitted: Arc::default(),
            capacity: workers + queue,
            max_wait: MAX_QUEUE_WAIT,
            workers,
        })
    }

    /// The default worker count, one per core: argon2 is CPU-bound, so more workers only
    /// add memory (64 MiB each) and latency, and fewer leave throughput unused.
    pub fn cores() -> usize {
        thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Logins waiting for a hashing thread (those beyond one per thread).
    pub fn waiting(&self) -> usize {
        self.admitted().total.saturating_sub(self.workers)
    }

    /// How many logins may wait before the pool answers [`HashError::Busy`].
    pub fn queue_capacity(&self) -> usize {
        self.capacity - self.workers
    }

    /// A place in the pool for one verify by `client` (any key naming who asks, such as
    /// an address), or [`HashError::Busy`] when every thread is running and the queue is
    /// full, or when `client` holds its share of a pool that is at least half full.
    ///
    /// The share, a quarter of the slots, keeps the pool fair: one client alone may use
    /// half of it (all of its CPU: far more slots than threads), but once it is that busy
    /// a client holding its share waits for its own logins to finish, and the other half
    /// stays free for everyone else.
    pub fn try_reserve(&self, client: &str) -> Result<HashSlot, HashError> {
        let mut admitted = self.admitted();
        if admitted.total >= self.capacity {
            return Err(HashError::Busy);
        }
        let held = admitted.by_client.get(client).copied().unwrap_or(0);
        if held >= self.share() && admitted.total >= self.capacity / 2 {
            return Err(HashError::Busy);
        }
        admitted.total += 1;
        *admitted.by_client.entry(client.to_owned()).or_insert(0) += 1;
        Ok(HashSlot {
            hasher: self.clone(),
            client: client.to_owned(),
        })
    }

    /// Slots one client may hold once the pool is half full.
    fn share(&self) -> usize {
        (self.capacity / 4).max(1)
    }

    fn admitted(&self) -> std::sync::MutexGuard<'_, Admitted> {
        // The counts stay consistent whatever panicked while holding the lock.
        self.admitted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new argon2id hash of `password` with the current parameters, off the async runtime.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        // One client: a command hashing a password has nobody to share the pool with.
        self.run("", move |_| {
            hash_password(password.expose_secret()).map_err(|e| HashError::Failed(e.to_string()))
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        client: &str,
        f: impl FnOnce(&mut Scratch) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let (queued, max_wait) = (Instant::now(), self.max_wait);
        let job: Job = Box::new(move |scratch| {
            // A login whose client has gone (its request future dropped) costs nothing.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(if queued.elapsed() > max_wait {
                Err(HashError::Busy)
            } else {
                f(scratch)
            });
        });
        self.queue.0.lock().push(client, job)?;
        self.queue.0.ready.notify_one();
        rx.await.map_err(|_| HashError::WorkerGone)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps `hasher`'s one worker busy until the returned sender is sent to; returns
    /// once the worker is running it.
    async fn occupy_worker(
        hasher: &PasswordHasher,
    ) -> (
        tokio::task::JoinHandle<Result<(), HashError>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (started_tx, started_rx) = oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let running = {
            let h = hasher.clone();
            tokio::spawn(async move {
                h.run("", move |_| {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    Ok(())
                })
                .await
            })
        };
        started_rx.await.unwrap();
        (running, release_tx)
    }

    #[tokio::test]
    async fn login_whose_caller_is_gone_is_not_hashed() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let hasher = PasswordHasher::new(1, 4).unwrap();
        let (running, release_tx) = occupy_worker(&hasher).await;
        // Queued behind the busy worker, then abandoned by its caller.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let abandoned = hasher.run("", move |_| {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), abandoned).await;
        assert!(timed_out.is_err());
        release_tx.send(()).unwrap();
        running.await.unwrap().unwrap();
        // Jobs run in order: once this one has run, the abandoned one was skipped.
        hasher.run("", |_| Ok(())).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn job_that_waited_too_long_for_a_thread_is_answered_busy_not_run() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut hasher = PasswordHasher::new(1, 4).unwrap();
        hasher.max_wait = Duration::from_millis(50);
        let (running, release_tx) = occupy_worker(&hasher).await;
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let late = tokio::spawn({
            let hasher = hasher.clone();
            async move {
                hasher
                    .run("", move |_| {
                        flag.store(true, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            }
        });
        // Queued behind the busy worker for longer than it may wait.
        tokio::time::sleep(Duration::from_millis(200)).await;
        release_tx.send(()).unwrap();
        running.await.unwrap().unwrap();
        let answer = late.await.unwrap();
        assert!(matches!(answer, Err(HashError::Busy)), "{answer:?}");
        assert!(!ran.load(Ordering::SeqCst), "a job past its wait was run");
        // A job that has not waited runs as before.
        assert!(hasher.run("", |_| Ok(())).await.is_ok());
    }

    #[test]
    fn slots_are_threads_plus_queue_and_come_back_when_dropped() {
        let hasher = PasswordHasher::new(1, 1).unwrap();
        let first = hasher.try_reserve("a").unwrap();
        let _second = hasher.try_reserve("b").unwrap();
        assert!(matches!(hasher.try_reserve("c"), Err(HashError::Busy)));
        drop(first);
        assert!(hasher.try_reserve("c").is_ok());
    }

    #[test]
    fn one_client_gets_half_the_pool_and_then_only_its_share() {
        // 8 slots: alone, a client may fill half (4); past half, each client only its
        // share (2), so the rest stays open to others.
        let hasher = PasswordHasher::new(2, 6).unwrap();
        let hog: Vec<_> = (0..4).map(|_| hasher.try_reserve("hog").unwrap()).collect();
        assert!(matches!(hasher.try_reserve("hog"), Err(HashError::Busy)));
        let others: Vec<_> = ["a", "a", "b", "c"]
            .iter()
            .map(|c| hasher.try_reserve(c).unwrap())
            .collect();
        assert!(matches!(hasher.try_reserve("d"), Err(HashError::Busy)));
        drop(others);
        drop(hog);
        // Everything came back, per client too.
        let again: Vec<_> = (0..4).map(|_| hasher.try_reserve("hog").unwrap()).collect();
        assert_eq!(again.len(), 4);
    }

    #[tokio::test]
    async fn queued_jobs_are_served_in_turn_per_client_not_in_arrival_order() {
        let hasher = PasswordHasher::new(1, 8).unwrap();
        let (running, release_tx) = occupy_worker(&hasher).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut queued = Vec::new();
        // Three jobs of a busy client arrive first, then one of another client.
        for (client, name) in [
            ("hog", "hog 1"),
            ("hog", "hog 2"),
            ("hog", "hog 3"),
            ("other", "other"),
        ] {
            let (hasher, order) = (hasher.clone(), Arc::clone(&order));
            queued.push(tokio::spawn(async move {
                hasher
                    .run(client, move |_| {
                        order.lock().unwrap().push(name);
                        Ok(())
                    })
                    .await
            }));
            // Let each reach the queue before the next.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        release_tx.send(()).unwrap();
        running.await.unwrap().unwrap();
        for job in queued {
            job.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["hog 1", "other", "hog 2", "hog 3"]);
    }

    #[tokio::test]
    async fn full_queue_answers_busy_instead_of_waiting() {
        let hasher = PasswordHasher::new(1, 1).unwrap();
        // Occupy the single worker until released...
        let (running, release_tx) = occupy_worker(&hasher).await;
        // ...fill the one queue slot...
        assert!(hasher.queue.0.lock().push("", Box::new(|_| {})).is_ok());
        // ...and the next job is refused at once.
        let refused = hasher.run("", |_| Ok(())).await;
        assert!(matches!(refused, Err(HashError::Busy)), "{refused:?}");
        release_tx.send(()).unwrap();
        running.await.unwrap().unwrap();
    }
}
