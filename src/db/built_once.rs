//! The SQL of the queries run on every request (the bearer check's reads), built by
//! SeaORM once per backend rather than each time: building it cost more instructions than
//! SQLite spends running it.

use std::sync::OnceLock;

use sea_orm::DbBackend;

/// One statement's SQL per backend, built on first use.
pub(super) struct BuiltOnce([OnceLock<String>; 3]);

impl BuiltOnce {
    pub(super) const fn new() -> Self {
        Self([OnceLock::new(), OnceLock::new(), OnceLock::new()])
    }
}

/// The SQL `build` makes for `backend`, built on the first call only.
pub(super) fn built_once(
    cache: &'static BuiltOnce,
    backend: DbBackend,
    build: impl FnOnce() -> String,
) -> &'static str {
    let slot = match backend {
        DbBackend::Sqlite => 0,
        DbBackend::Postgres => 1,
        DbBackend::MySql => 2,
    };
    cache.0[slot].get_or_init(build)
}
