//! Black-box tests: the real app on port 0, driven over HTTP (and the CLI binary).

#![allow(clippy::unwrap_used)]

mod cli;
mod docs;
mod flood;
mod helpers;
mod limits;
mod login;
mod protected;
mod routing;
mod storage;
mod throttle;
