//! `jwt_cost [iterations]`: the CPU cost of issuing and validating one access token with
//! gatehouse's own [`TokenAuthority`], HS256 next to EdDSA (Ed25519) and RS256 (RSA 2048),
//! in ns per operation. RS256 runs a twentieth of the iterations: an RSA signature costs
//! about a millisecond.
//! Each figure is the best of 5 rounds (the machine may be busy); the ratios are what to
//! compare across machines.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use gatehouse::auth::{
    keys::{Ed25519Key, KeySet, RsaKey},
    server_secret::ServerSecret,
    token::{unix_now, AccessTokenFor, TokenAuthority, TokenSettings},
};

const ROUNDS: usize = 5;

fn settings() -> TokenSettings {
    TokenSettings {
        lifetime: Duration::from_secs(1800),
        ..Default::default()
    }
}

/// Best-of-[`ROUNDS`] nanoseconds per call of `op`, over `iterations` calls a round.
fn ns_per_op(iterations: u32, mut op: impl FnMut()) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                op();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .fold(f64::INFINITY, f64::min)
}

fn measure(name: &str, tokens: &TokenAuthority, iterations: u32) -> (f64, f64) {
    let now = unix_now();
    let claims = AccessTokenFor {
        username: "johndoe",
        uid: 1,
        token_version: 0,
        scope: "me items",
        sid: Some("q1b0XnWf3a2uWvUo2fH2aA"),
        auth_time: now,
        amr: &["pwd"],
        email_verified: true,
    };
    let sign = ns_per_op(iterations, || {
        black_box(tokens.issue_access_token(&claims, black_box(now)).ok());
    });
    let token = tokens.issue_access_token(&claims, now).unwrap_or_default();
    let verify = ns_per_op(iterations, || {
        black_box(tokens.validate_access_token(black_box(&token), now).ok());
    });
    assert!(tokens.validate_access_token(&token, now).is_ok());
    println!("{name:<6} sign {sign:>9.0} ns/op   verify {verify:>9.0} ns/op");
    (sign, verify)
}

fn main() {
    let iterations = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let secret = ServerSecret::new(vec![7; 32]).unwrap_or_else(|e| panic!("{e}"));
    let hs256 = TokenAuthority::new(&secret, settings());
    let eddsa = TokenAuthority::eddsa(KeySet::single(Ed25519Key::generate()), settings());
    let rs256 = TokenAuthority::rs256(KeySet::single(RsaKey::generate()), settings());
    println!("{iterations} iterations a round, best of {ROUNDS} rounds");
    let (hs_sign, hs_verify) = measure("HS256", &hs256, iterations);
    let (ed_sign, ed_verify) = measure("EdDSA", &eddsa, iterations);
    let (rs_sign, rs_verify) = measure("RS256", &rs256, (iterations / 20).max(1));
    for (name, sign, verify) in [("EdDSA", ed_sign, ed_verify), ("RS256", rs_sign, rs_verify)] {
        println!(
            "{name} / HS256: sign {:.1}x, verify {:.1}x",
            sign / hs_sign,
            verify / hs_verify
        );
    }
}
