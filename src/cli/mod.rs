//! Subcommands: `serve` (default), `migrate`, `openapi`, `user ...`.

mod user;

use std::process::ExitCode;

use crate::{
    api::{self, docs},
    app::{self, App},
    config::{Cli, Command, ServeArgs},
    db, telemetry,
};

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
    if matches!(command, Command::Serve(_) | Command::Migrate) {
        telemetry::init(&settings.log_format);
    }
    let result: Result<(), String> = match command {
        Command::Serve(serve) => match App::build(&settings, &serve).await {
            Ok(app) => app
                .run_until_stopped()
                .await
                .map_err(|e| format!("server failed: {e}")),
            Err(e) => Err(e.to_string()),
        },
        Command::Migrate => app::prepare(&settings)
            .await
            .map(|_| tracing::info!("database is up to date"))
            .map_err(|e| e.to_string()),
        Command::Openapi => {
            println!(
                "{}",
                docs::document(&api::service().spec(), &settings.root_path)
            );
            Ok(())
        }
        Command::User(command) => user::run(&settings, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let message = db::url::redact_credentials(&message, &settings.database_url);
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
