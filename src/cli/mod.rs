//! Subcommands: `serve` (default), `migrate`, `openapi`, `user ...`, `client ...`,
//! `keys ...`, `mail ...`.

mod client;
mod keys;
mod mail;
mod user;

use std::process::ExitCode;

use crate::{
    accounts::AccountsError,
    api::{self, docs},
    app::{self, App, StartupError},
    config::{Cli, Command, MailCommand, ServeArgs},
    db, telemetry,
};

/// Why a command failed; printed as one `error:` line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error("cannot read the password: {0}")]
    Password(#[source] std::io::Error),
    #[error("cannot start password hashing: {0}")]
    Workers(#[source] std::io::Error),
    #[error("{0}")]
    NoStoredKeys(&'static str),
    /// `mail test`: no relay configured, or it did not take the mail.
    #[error("{0}")]
    Mail(String),
}

/// Runs the command line; failures are printed as one `error:` line and exit non-zero.
pub async fn run(cli: Cli) -> ExitCode {
    let settings = cli.settings;
    let command = match cli.command {
        Some(command) => command,
        None => match ServeArgs::from_env() {
            Ok(serve) => Command::Serve(serve),
            Err(e) => e.exit(),
        },
    };
    // Dropped before the `error:` line, so that every log line is written before it.
    let log = matches!(command, Command::Serve(_) | Command::Migrate)
        .then(|| telemetry::init(&settings.log_format));
    let result: Result<(), CliError> = match command {
        Command::Serve(serve) => match App::build(&settings, &serve).await {
            Ok(app) => app.run_until_stopped().await.map_err(CliError::Serve),
            Err(e) => Err(e.into()),
        },
        Command::Migrate => {
            async {
                app::keys::configured_server_secret(&settings)?;
                if let (Some(path), Some(algorithm)) = (
                    &settings.jwt_private_key_file,
                    settings.jwt_algorithm.key_algorithm(),
                ) {
                    app::keys::private_key_from_file(path, algorithm)?;
                }
                app::open_database(&settings).await?;
                tracing::info!("database is up to date");
                Ok(())
            }
            .await
        }
        Command::Openapi => {
            println!(
                "{}",
                docs::document(&api::service().spec(), &settings.root_path)
            );
            Ok(())
        }
        Command::User(command) => user::run(&settings, command).await,
        Command::Client(command) => client::run(&settings, command).await,
        Command::Keys(command) => keys::run(&settings, command).await,
        Command::Mail(MailCommand::Test { address }) => mail::test(&settings, &address).await,
    };
    drop(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = db::url::redact_credentials(&e.to_string(), &settings.database_url);
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
