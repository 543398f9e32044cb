//! Schema of gatehouse. The schema changes only through these migrations; every one is
//! reversible (`down` undoes `up`).

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_users;
mod m20261126_000002_create_server_secrets;
mod m20261126_000003_create_login_failures;
mod m20261130_000004_create_known_clients;
mod m20261130_000005_add_user_scopes;
mod m20261130_000006_create_sessions;
mod m20261130_000010_create_signing_keys;
mod m20261206_000007_bounded_sessions;
mod m20261206_000010_username_skeletons;
mod m20261206_000020_second_factor;
mod m20261208_000011_accounts_mail;
mod m20261209_000005_oauth_clients;
mod m20261209_000010_sign_in_with_gatehouse;
mod m20261209_000020_signing_key_algorithm;

pub use m20261208_000011_accounts_mail::email_key;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_users::Migration),
            Box::new(m20261126_000002_create_server_secrets::Migration),
            Box::new(m20261126_000003_create_login_failures::Migration),
            Box::new(m20261130_000004_create_known_clients::Migration),
            Box::new(m20261130_000005_add_user_scopes::Migration),
            Box::new(m20261130_000006_create_sessions::Migration),
            Box::new(m20261130_000010_create_signing_keys::Migration),
            Box::new(m20261206_000007_bounded_sessions::Migration),
            Box::new(m20261206_000010_username_skeletons::Migration),
            Box::new(m20261206_000020_second_factor::Migration),
            Box::new(m20261208_000011_accounts_mail::Migration),
            Box::new(m20261209_000005_oauth_clients::Migration),
            Box::new(m20261209_000010_sign_in_with_gatehouse::Migration),
            Box::new(m20261209_000020_signing_key_algorithm::Migration),
        ]
    }
}
