//! The argon2 ceiling for logins: how many verifies per second the machine's cores can do.
//!
//! Runs gatehouse's own verify on the tutorial's hash of "secret" (what every benchmark
//! login checks) on one thread per core at once, each reusing its argon2 memory, as the
//! hashing pool's threads do under load, and measures each verify's CPU time (so time
//! spent waiting for a core while the machine is shared does not count). Prints one JSON
//! object:
//! `cores`, `cpu_s_per_verify` (median), `ceiling_per_s` = cores / cpu_s_per_verify,
//! `single_cpu_s_per_verify`, the same figure with one thread alone, and `wall_per_s`,
//! the verifies per second of wall-clock time that the threads actually achieved (lower
//! than the ceiling when other processes share the cores), and `fresh_cpu_s_per_verify`,
//! one thread alone with fresh memory for every verify (an idle server's first login).

use std::{
    thread,
    time::{Duration, Instant},
};

use gatehouse::auth::password::{verify_password, verify_password_with, Scratch, Verification};
use nix::time::{clock_gettime, ClockId};

/// The tutorial's argon2id hash of "secret" (m=65536, t=3, p=4), as `serve --demo` seeds it.
const DEMO_HASH: &str = "$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc";

fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// CPU seconds of each of `n` verifies on this thread, reusing memory or not.
fn verify_times(n: usize, reuse: bool) -> Vec<f64> {
    let mut scratch = Scratch::default();
    (0..n)
        .map(|_| {
            let start = thread_cpu();
            let outcome = if reuse {
                verify_password_with(&mut scratch, "secret", DEMO_HASH)
            } else {
                verify_password("secret", DEMO_HASH)
            };
            assert_eq!(outcome, Verification::Match { rehash: None });
            (thread_cpu() - start).as_secs_f64()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let per_thread: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8);
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    // Warm up (page faults of the first 64 MiB block, CPU feature detection).
    verify_times(1, false);
    let fresh = median(verify_times(per_thread, false));
    let single = median(verify_times(per_thread, true));
    let wall = Instant::now();
    let all: Vec<f64> = thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|_| s.spawn(|| verify_times(per_thread, true)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let wall_per_s = all.len() as f64 / wall.elapsed().as_secs_f64();
    let parallel = median(all);
    println!(
        "{}",
        serde_json::json!({
            "cores": cores,
            "cpu_s_per_verify": parallel,
            "single_cpu_s_per_verify": single,
            "fresh_cpu_s_per_verify": fresh,
            "ceiling_per_s": cores as f64 / parallel,
            "wall_per_s": wall_per_s,
        })
    );
}
