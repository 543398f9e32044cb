//! `gatehouse keys rotate|list`: the Ed25519 signing keys of `JWT_ALGORITHM=EdDSA`.

use chrono::DateTime;

use super::CliError;
use crate::{
    accounts::signing_keys::{self, publish_before_signing},
    app,
    auth::{keys::KeyStatus, token::JwtAlgorithm},
    config::{KeysCommand, Settings},
};

pub async fn run(settings: &Settings, command: KeysCommand) -> Result<(), CliError> {
    if settings.jwt_private_key_file.is_some() {
        return Err(CliError::NoStoredKeys(
            "the signing key comes from JWT_PRIVATE_KEY_FILE, not the database: rotate it \
             by replacing the file (tokens it signed stop working), or unset it to use \
             stored keys",
        ));
    }
    if settings.jwt_algorithm != JwtAlgorithm::EdDsa && matches!(command, KeysCommand::Rotate) {
        return Err(CliError::NoStoredKeys(
            "key rotation needs JWT_ALGORITHM=EdDSA; an HS256 secret is changed through \
             SECRET_KEY, which ends every token",
        ));
    }
    let db = &app::open_database(settings).await?;
    let lifetime = settings.token_lifetime();
    match command {
        KeysCommand::Rotate => {
            let publish_for = publish_before_signing(settings.jwks_max_age());
            let new = signing_keys::rotate_key(db, lifetime, publish_for).await?;
            println!(
                "new key {} published now, signs from {}",
                new.kid,
                time(new.signs_from)
            );
            print_statuses(&signing_keys::key_statuses(db, lifetime).await?);
        }
        KeysCommand::List => {
            if settings.jwt_algorithm != JwtAlgorithm::EdDsa {
                eprintln!("note: JWT_ALGORITHM is HS256; these keys sign nothing");
            }
            print_statuses(&signing_keys::key_statuses(db, lifetime).await?);
        }
    }
    Ok(())
}

fn time(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

fn print_statuses(statuses: &[KeyStatus]) {
    println!(
        "{:<43}  {:<7}  {:<20}  {:<20}  {:<20}  published until",
        "kid", "state", "created", "signs from", "signs until"
    );
    for s in statuses {
        println!(
            "{:<43}  {:<7}  {:<20}  {:<20}  {:<20}  {}",
            s.kid,
            s.state.as_str(),
            time(s.created),
            time(s.signs_from),
            s.signs_until.map_or_else(|| "-".to_owned(), time),
            s.published_until.map_or_else(|| "-".to_owned(), time),
        );
    }
}
