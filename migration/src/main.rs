//! The sea-orm-migration CLI for this schema (`cargo run -p migration -- status|up|down`).

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
