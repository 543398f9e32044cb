//! Password hashing (argon2id) and verification (argon2 of any parameters, bcrypt),
//! run on a small dedicated thread pool so the async workers never do it.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread,
    time::{Duration, Instant},
};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// The tutorial's pwdlib parameters: argon2id, 64 MiB, 3 passes, 4 lanes.
const M_COST_KIB: u32 = 65_536;
const T_COST: u32 = 3;
const P_COST: u32 = 4;
const OUTPUT_LEN: usize = 32;

/// Longest a job waits for a hashing thread before it is answered [`HashError::Busy`]
/// instead of run. A full queue (16 per thread) drains in ~1.6 s of argon2 work on an
/// idle machine; under CPU contention it can take several times that, and a login that
/// old is better refused at once (its client may have given up) than hashed late, which
/// would only delay the logins queued behind it.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(3);

/// A valid argon2id hash of a random password nobody knows, with the current parameters.
/// Unknown usernames are verified against it so that they cost as much as a wrong password.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$5OAgY2VdQNWNC8RnFziU5A$tX04O86OzWbxHC64iPyMxSBbhfqo9KAy2PZzEt5XhMc";

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password, or a stored hash in a format we cannot read.
    Mismatch,
    /// Correct password; `rehash` holds a current hash when the stored one is outdated
    /// (bcrypt, or argon2 with other parameters).
    Match { rehash: Option<String> },
}

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

/// Argon2 working memory (64 MiB with the current parameters) that a hashing thread keeps
/// while more logins are queued, so back-to-back verifies under load do not each map,
/// fault in and zero it afresh: that was a third of a verify's CPU time (bench/RESULTS.md).
/// The thread frees it whenever the queue is empty, so an idle server holds none.
#[derive(Default)]
pub struct Scratch(Vec<Block>);

impl Scratch {
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0 = vec![Block::default(); count];
        }
        &mut self.0[..count]
    }

    fn release(&mut self) {
        self.0 = Vec::new();
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
        self.run("", move |_| hash_password(password.expose_secret()))
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

fn current_argon2() -> Argon2<'static> {
    // Constant, valid argon2 parameters: this `expect` cannot fire.
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new argon2id PHC string for `password`. Blocking: call it through [`PasswordHasher`].
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    current_argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

/// Checks `password` against a stored argon2 or bcrypt hash. Blocking.
pub fn verify_password(password: &str, stored: &str) -> Verification {
    verify_password_with(&mut Scratch::default(), password, stored)
}

/// [`verify_password`] with argon2 working memory that outlives the call. Blocking.
pub fn verify_password_with(scratch: &mut Scratch, password: &str, stored: &str) -> Verification {
    let (matched, current) = if is_bcrypt(stored) {
        (bcrypt::verify(password, stored).unwrap_or(false), false)
    } else {
        match PasswordHash::new(stored) {
            Ok(hash) => (
                argon2_matches(scratch, password.as_bytes(), &hash),
                is_current(&hash),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "stored password hash is not in a known format");
                (false, false)
            }
        }
    };
    match (matched, current) {
        (false, _) => Verification::Mismatch,
        (true, true) => Verification::Match { rehash: None },
        (true, false) => Verification::Match {
            rehash: hash_password(password).ok(),
        },
    }
}

/// What argon2's own `verify_password` does, with the hash's own algorithm, version,
/// parameters and salt, but in `scratch`'s memory; the comparison is constant-time.
fn argon2_matches(scratch: &mut Scratch, password: &[u8], hash: &PasswordHash<'_>) -> bool {
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(hash.algorithm),
        Params::try_from(hash),
        hash.salt,
        hash.hash,
    ) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = scratch.blocks(params.block_count());
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, blocks)
        .is_ok()
        && bool::from(out.ct_eq(expected))
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

/// Whether `hash` is argon2id v19 with exactly the current parameters.
fn is_current(hash: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm == Algorithm::Argon2id.ident()
        && hash.version == Some(Version::V0x13.into())
        && params.m_cost() == M_COST_KIB
        && params.t_cost() == T_COST
        && params.p_cost() == P_COST
        && hash.hash.is_some_and(|h| h.len() == OUTPUT_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TUTORIAL_HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc";

    #[test]
    fn tutorial_seed_hash_verifies_secret_and_needs_no_rehash() {
        assert_eq!(
            verify_password("secret", TUTORIAL_HASH),
            Verification::Match { rehash: None }
        );
        assert_eq!(
            verify_password("Secret", TUTORIAL_HASH),
            Verification::Mismatch
        );
    }

    #[test]
    fn new_hashes_are_current_argon2id() {
        let hash = hash_password("pw").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"),
            "{hash}"
        );
        assert!(is_current(&PasswordHash::new(&hash).unwrap()));
        assert!(is_current(&PasswordHash::new(DUMMY_HASH).unwrap()));
    }

    #[test]
    fn bcrypt_and_weaker_argon2_verify_and_ask_for_rehash() {
        let bcrypt = "$2b$04$Vf0sk9DYpJSvGFPbYJFvUepGgKAXN7fxNFOr9vIm3g.6z6xdLA5Qy";
        let Verification::Match { rehash: Some(new) } = verify_password("legacy-pass", bcrypt)
        else {
            panic!("bcrypt hash did not verify");
        };
        assert!(is_current(&PasswordHash::new(&new).unwrap()));
        assert_eq!(verify_password("nope", bcrypt), Verification::Mismatch);

        let weak = "$argon2id$v=19$m=19456,t=2,p=1$CW+CpFWFO1+meCaQe66xgA$3uXlrP6Lf9gRp4jJpC6AwYHn5/iJlk6rc7EfhnMovow";
        assert!(matches!(
            verify_password("older-pass", weak),
            Verification::Match { rehash: Some(_) }
        ));
    }

    #[test]
    fn unreadable_hash_is_a_mismatch_not_a_panic() {
        assert_eq!(verify_password("x", ""), Verification::Mismatch);
        assert_eq!(verify_password("x", "plaintext"), Verification::Mismatch);
        assert_eq!(
            verify_password("x", "$2b$99$garbage"),
            Verification::Mismatch
        );
    }

    #[test]
    fn reused_memory_gives_the_same_answers_as_fresh_memory() {
        let weak = "$argon2id$v=19$m=19456,t=2,p=1$CW+CpFWFO1+meCaQe66xgA$3uXlrP6Lf9gRp4jJpC6AwYHn5/iJlk6rc7EfhnMovow";
        let mut scratch = Scratch::default();
        for _ in 0..2 {
            assert_eq!(
                verify_password_with(&mut scratch, "secret", TUTORIAL_HASH),
                Verification::Match { rehash: None }
            );
            assert_eq!(
                verify_password_with(&mut scratch, "Secret", TUTORIAL_HASH),
                Verification::Mismatch
            );
            // A smaller memory cost in a larger buffer, and back.
            assert!(matches!(
                verify_password_with(&mut scratch, "older-pass", weak),
                Verification::Match { rehash: Some(_) }
            ));
            assert_eq!(
                verify_password_with(&mut scratch, "older-pas", weak),
                Verification::Mismatch
            );
        }
    }

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
