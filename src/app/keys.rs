//! Where the keys come from: the server secret (`SECRET_KEY`, `--secret-key-file`, else
//! generated once into the database: HS256's key, and the root refresh tokens are keyed
//! from), the Ed25519 or RSA key of `--jwt-private-key-file`, and the token authority built
//! from them. `migrate` checks the configured ones too.

use std::{io, path::Path};

use secrecy::ExposeSecret;

use super::StartupError;
use crate::{
    accounts::signing_keys,
    auth::{
        keys::{KeyAlgorithm, KeySet, SigningKey},
        server_secret::ServerSecret,
        token::{TokenAuthority, TokenSettings},
    },
    config::Settings,
    db::{self, Db},
};

/// Name of the generated server secret in `server_secrets` (from before it had a name of
/// its own: existing databases hold it under this one).
const GENERATED_SECRET_NAME: &str = "jwt_signing_key";

/// The token rules of `JWT_ALGORITHM` with their keys: under HS256 the server secret,
/// under EdDSA and RS256 the key of `JWT_PRIVATE_KEY_FILE`, else the database's keys of
/// that algorithm.
pub(super) async fn token_authority(
    settings: &Settings,
    secret: &ServerSecret,
    db: &Db,
) -> Result<TokenAuthority, StartupError> {
    let token_settings = TokenSettings {
        lifetime: settings.token_lifetime(),
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
    };
    Ok(match settings.jwt_algorithm.key_algorithm() {
        None => TokenAuthority::new(secret, token_settings),
        Some(algorithm) => {
            let keys = match &settings.jwt_private_key_file {
                Some(path) => KeySet::single(private_key_from_file(path, algorithm)?),
                None => signing_keys::load_key_set(db, algorithm, settings.token_lifetime())
                    .await
                    .map_err(StartupError::SigningKeys)?,
            };
            TokenAuthority::asymmetric(algorithm, keys, token_settings)
        }
    })
}

/// The `algorithm` key of `--jwt-private-key-file`, with the rules of a secret key file.
pub fn private_key_from_file(
    path: &Path,
    algorithm: KeyAlgorithm,
) -> Result<SigningKey, StartupError> {
    let shown = || path.display().to_string();
    let bytes = read_key_file(path).map_err(|source| StartupError::PrivateKeyFile {
        path: shown(),
        source,
    })?;
    let pem = String::from_utf8_lossy(&bytes);
    SigningKey::from_pem(algorithm, &pem).map_err(|source| StartupError::PrivateKey {
        path: shown(),
        source,
    })
}

/// The configured server secret, else the one generated once into the database so that
/// restarts and replicas sharing it agree.
pub(super) async fn server_secret(
    settings: &Settings,
    db: &Db,
) -> Result<ServerSecret, StartupError> {
    if let Some(secret) = configured_server_secret(settings)? {
        return Ok(secret);
    }
    let stored =
        db::server_secret::get_or_create(db, GENERATED_SECRET_NAME, ServerSecret::generate_hex)
            .await
            .map_err(StartupError::Database)?;
    Ok(ServerSecret::new(stored.into_bytes())?)
}

/// The server secret of `--secret-key-file`, else of `SECRET_KEY`, checked; `None` when
/// neither is set. `migrate` checks it too, so a bad key is found before the first `serve`.
pub fn configured_server_secret(settings: &Settings) -> Result<Option<ServerSecret>, StartupError> {
    if let Some(path) = &settings.secret_key_file {
        let mut bytes = read_key_file(path).map_err(|source| StartupError::SecretKeyFile {
            path: path.display().to_string(),
            source,
        })?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        return Ok(Some(ServerSecret::new(bytes)?));
    }
    settings
        .secret_key
        .as_ref()
        .map(|key| ServerSecret::new(key.expose_secret().as_bytes().to_vec()))
        .transpose()
        .map_err(StartupError::from)
}

/// A key file holds one key: this many bytes is plenty for any key and its newline.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// The bytes of a key file: a regular file (after symlinks) of at most
/// [`MAX_KEY_FILE_BYTES`], so that `/dev/zero`, a pipe or a log file given by mistake is
/// refused at once instead of being read without end.
fn read_key_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let not_regular = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a device, pipe or directory cannot hold a key)",
        )
    };
    // Checked before opening too: opening a pipe would wait for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_KEY_FILE_BYTES} bytes; a key file holds one key"),
        ));
    }
    Ok(bytes)
}
