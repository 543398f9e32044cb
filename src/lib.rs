//! gatehouse: the FastAPI tutorial's OAuth2 password + JWT bearer service, in Rust.
//!
//! Data flows one way: `api` (HTTP) and `cli` (commands) call `accounts` (logins, bearer
//! checks, user management; no HTTP), which uses `auth` (passwords, tokens, limits; no
//! HTTP, no database) and `db` (storage; no tokens). `app` wires them into a server
//! (`server`: the HTTP/1.1 connection loop and its limits; `metrics`: what Prometheus
//! scrapes).

pub mod accounts;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod mail;
pub mod metrics;
pub mod server;
pub mod telemetry;
