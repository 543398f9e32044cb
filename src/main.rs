use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    gatehouse::cli::run(gatehouse::config::Cli::parse()).await
}
