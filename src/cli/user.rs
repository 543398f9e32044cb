//! `gatehouse user add|passwd|disable|enable|revoke|scopes|list`.
//!
//! Passwords come from a prompt on a terminal or from the first line of stdin when piped,
//! never from argv where other users could read them in the process list.

use std::io::{BufRead, IsTerminal};

use secrecy::SecretString;

use super::CliError;
use crate::{
    accounts::{
        held_scopes,
        manage::{self, NewAccount},
        totp, usernames, AccountsError,
    },
    app,
    auth::hashing_pool::PasswordHasher,
    config::{Settings, UserCommand},
};

pub async fn run(settings: &Settings, command: UserCommand) -> Result<(), CliError> {
    let db = &app::open_database(settings).await?;
    match command {
        UserCommand::Add {
            username,
            email,
            full_name,
            disabled,
            scopes,
        } => {
            // Refuse a bad name before asking for a password.
            usernames::prepare(&username)?;
            let password = read_password(settings)?;
            let account = NewAccount {
                username,
                email,
                full_name,
                disabled,
                scopes,
            };
            let policy = settings.password_policy();
            let stored = manage::add_user(db, &one_hasher()?, &policy, account, password).await?;
            println!("created user {stored}");
        }
        UserCommand::Passwd { username } => {
            let password = read_password(settings)?;
            let policy = settings.password_policy();
            manage::change_password(db, &one_hasher()?, &policy, &username, password).await?;
            println!("{username}: password changed; earlier tokens are revoked");
        }
        UserCommand::Disable { username } => {
            manage::set_disabled(db, &username, true).await?;
            println!("{username}: disabled; earlier tokens are revoked");
        }
        UserCommand::Enable { username } => {
            manage::set_disabled(db, &username, false).await?;
            println!("{username}: enabled");
        }
        UserCommand::Revoke { username } => {
            manage::revoke_tokens(db, &username).await?;
            println!("{username}: every earlier token is revoked");
        }
        UserCommand::TotpReset { username } => {
            totp::reset_totp(db, &username).await?;
            println!("{username}: TOTP is off and every session has ended");
        }
        UserCommand::Scopes {
            username,
            set: Some(scopes),
        } => {
            manage::set_scopes(db, &username, scopes).await?;
            println!("{username}: holds scopes: {scopes}");
        }
        UserCommand::Scopes {
            username,
            set: None,
        } => {
            let user = manage::get_user(db, &username).await?;
            println!("{}", held_scopes(&user));
        }
        UserCommand::List => {
            println!(
                "{:<24} {:<8} {:<32} {:<32} full name",
                "username", "status", "email", "scopes"
            );
            for u in manage::list_users(db).await? {
                let status = if u.disabled { "disabled" } else { "active" };
                println!(
                    "{:<24} {:<8} {:<32} {:<32} {}",
                    u.username,
                    status,
                    u.email.as_deref().unwrap_or("-"),
                    held_scopes(&u).to_string(),
                    u.full_name.as_deref().unwrap_or("-")
                );
            }
            let shared = manage::shared_addresses(db).await?;
            if !shared.is_empty() {
                println!(
                    "\nusers sharing an address (from before addresses were unique; only the \
                     first one's is found by password reset and verification):"
                );
                for (address, users) in shared {
                    println!("  {address}: {}", users.join(", "));
                }
            }
        }
    }
    Ok(())
}

/// One hashing thread: a command hashes one password.
fn one_hasher() -> Result<PasswordHasher, CliError> {
    PasswordHasher::new(1, 1).map_err(CliError::Workers)
}

/// The new password: asked twice on a terminal, else the first line of stdin.
fn read_password(settings: &Settings) -> Result<SecretString, CliError> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(CliError::Password)?;
        let again = rpassword::prompt_password("Repeat password: ").map_err(CliError::Password)?;
        if first != again {
            return Err(AccountsError::Invalid {
                field: "password",
                message: "passwords do not match".to_owned(),
            }
            .into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(CliError::Password)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    let password = SecretString::from(password);
    manage::check_password(&settings.password_policy(), "password", &password)?;
    Ok(password)
}
