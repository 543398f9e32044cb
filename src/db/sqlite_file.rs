//! Who may read the SQLite files. Without `SECRET_KEY` the signing key lives in the
//! database, so a database file other local users can read lets them forge tokens.
//!
//! SQLite creates a new database file 0644 (less the umask), and gives its `-wal`, `-shm`
//! and `-journal` files the main file's permissions. So gatehouse creates a missing file
//! itself, 0600, before SQLite opens it; SQLite then makes the others 0600 too. An
//! existing file keeps the permissions its owner gave it, with a warning when they let
//! others in.

use std::{
    io,
    path::{Path, PathBuf},
    str::FromStr,
};

use sea_orm::sqlx::sqlite::SqliteConnectOptions;

/// The SQLite files of `url` that exist: the database and its `-wal`, `-shm`, `-journal`.
/// Empty for PostgreSQL and in-memory databases.
fn files_of(url: &str) -> Vec<PathBuf> {
    let Some(db) = database_path(url) else {
        return Vec::new();
    };
    let mut files = vec![db.clone()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        files.push(name.into());
    }
    files.retain(|f| f.exists());
    files
}

/// The database file of a SQLite `url`; `None` for other URLs and in-memory databases.
fn database_path(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:")
        || url.contains(":memory:")
        || url_mode(url).as_deref() == Some("memory")
    {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

/// The `mode` parameter of a SQLite URL (`ro`, `rw`, `rwc`, `memory`), if given.
pub fn url_mode(url: &str) -> Option<String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "mode")
        .map(|(_, value)| value.into_owned())
}

/// Creates the database file of `url`, readable and writable by its owner only, when it is
/// missing and the URL allows creating it (`mode=rwc`). Does nothing otherwise.
pub fn create_private(url: &str) -> io::Result<()> {
    let Some(path) = database_path(url) else {
        return Ok(());
    };
    if url_mode(url).as_deref() != Some("rwc") || path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        // Created by a replica or command starting at the same moment: theirs is as private.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

/// The SQLite files of `url` that users other than the owner may access, with their
/// permission bits.
pub fn accessible_to_others(url: &str) -> Vec<(PathBuf, u32)> {
    files_of(url)
        .into_iter()
        .filter_map(|file| Some((mode_of(&file)?, file)))
        .filter(|(mode, _)| mode & 0o077 != 0)
        .map(|(mode, file)| (file, mode))
        .collect()
}

#[cfg(unix)]
fn mode_of(file: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode_of(_file: &Path) -> Option<u32> {
    None
}
