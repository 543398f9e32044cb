//! Black-box tests: the real app on port 0, driven over HTTP (and the CLI binary).

#![allow(clippy::unwrap_used)]

mod admin;
mod admin_clients;
mod authorize;
mod cli;
mod docs;
mod fair_share;
mod fastapi_scopes;
mod faults;
mod flood;
mod guessing;
mod hardening;
mod health;
mod helpers;
mod introspect;
mod jwks;
mod jwks_snippet;
mod limits;
mod login;
mod metadata;
mod metrics;
mod outbox;
mod password_reset;
mod protected;
mod refresh_rotation;
mod replicas;
mod revocation;
mod rotation;
mod routing;
mod rs256;
mod scopes;
mod session_invariants;
mod sessions;
mod shared_addresses;
mod signup;
mod smtp_sink;
mod storage;
mod throttle;
mod totp;
mod user_identity;
mod usernames;
mod verification;
