//! `gatehouse keys rotate|list`: the signing keys of `JWT_ALGORITHM=EdDSA` (Ed25519) and
//! `RS256` (RSA) kept in the database.

use chrono::DateTime;

use super::CliError;
use crate::{
    accounts::signing_keys::{self, publish_before_signing},
    app,
    auth::keys::{KeyAlgorithm, KeyStatus},
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
    let algorithm = settings.jwt_algorithm.key_algorithm();
    let lifetime = settings.token_lifetime();
    match command {
        KeysCommand::Rotate => {
            let algorithm = algorithm.ok_or(CliError::NoStoredKeys(
                "key rotation needs JWT_ALGORITHM=EdDSA or RS256; an HS256 secret is changed \
                 through SECRET_KEY, which ends every token",
            ))?;
            let db = &app::open_database(settings).await?;
            let publish_for = publish_before_signing(settings.jwks_max_age());
            let new = signing_keys::rotate_key(db, algorithm, lifetime, publish_for).await?;
            println!(
                "new key {} published now, signs from {}",
                new.kid,
                time(new.signs_from)
            );
            print_header();
            print_statuses(
                algorithm,
                &signing_keys::key_statuses(db, algorithm, lifetime).await?,
            );
        }
        KeysCommand::List => {
            let db = &app::open_database(settings).await?;
            let listed = match algorithm {
                Some(algorithm) => vec![algorithm],
                None => {
                    eprintln!("note: JWT_ALGORITHM is HS256; these keys sign nothing");
                    KeyAlgorithm::ALL.to_vec()
                }
            };
            print_header();
            for algorithm in listed {
                print_statuses(
                    algorithm,
                    &signing_keys::key_statuses(db, algorithm, lifetime).await?,
                );
            }
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

fn print_header() {
    println!(
        "{:<43}  {:<7}  {:<5}  {:<20}  {:<20}  {:<20}  published until",
        "kid", "state", "alg", "created", "signs from", "signs until"
    );
}

fn print_statuses(algorithm: KeyAlgorithm, statuses: &[KeyStatus]) {
    for s in statuses {
        println!(
            "{:<43}  {:<7}  {:<5}  {:<20}  {:<20}  {:<20}  {}",
            s.kid,
            s.state.as_str(),
            algorithm.as_str(),
            time(s.created),
            time(s.signs_from),
            s.signs_until.map_or_else(|| "-".to_owned(), time),
            s.published_until.map_or_else(|| "-".to_owned(), time),
        );
    }
}
