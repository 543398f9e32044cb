//! The gatehouse API client, generated at build time by progenitor from
//! `openapi/openapi.json` (see `build.rs`).

#![allow(clippy::all, clippy::unwrap_used, missing_docs, unused)]

include!(concat!(env!("OUT_DIR"), "/client.rs"));
