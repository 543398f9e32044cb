//! `gatehouse user add|passwd|disable|enable|revoke|list`.
//!
//! Passwords come from a prompt on a terminal or from the first line of stdin when piped,
//! never from argv where other users could read them in the process list.

use std::io::{BufRead, IsTerminal};

use secrecy::{ExposeSecret, SecretString};

use crate::{
    api::form::{MAX_PASSWORD_BYTES, MAX_USERNAME_CHARS},
    app,
    config::{Settings, UserCommand},
    db::{self, CreateUserError, NewUser},
};

pub async fn run(settings: &Settings, command: UserCommand) -> Result<(), String> {
    let state = app::prepare(settings).await.map_err(|e| e.to_string())?;
    let db = &state.db;
    match command {
        UserCommand::Add {
            username,
            email,
            full_name,
            disabled,
        } => {
            check_username(&username)?;
            let password = read_password()?;
            let hashed_password = state
                .hasher
                .hash(password)
                .await
                .map_err(|e| e.to_string())?;
            let new = NewUser {
                username: username.clone(),
                email,
                full_name,
                hashed_password,
                disabled,
            };
            db::create_user(db, new).await.map_err(|e| match e {
                CreateUserError::Exists(_) => e.to_string(),
                CreateUserError::Db(e) => format!("database error: {e}"),
            })?;
            println!("created user {username}");
        }
        UserCommand::Passwd { username } => {
            let password = read_password()?;
            let hashed = state
                .hasher
                .hash(password)
                .await
                .map_err(|e| e.to_string())?;
            report(
                db::change_password(db, &username, hashed).await,
                &username,
                "password changed; earlier tokens are revoked",
            )?;
        }
        UserCommand::Disable { username } => {
            report(
                db::set_disabled(db, &username, true).await,
                &username,
                "disabled; earlier tokens are revoked",
            )?;
        }
        UserCommand::Enable { username } => {
            report(
                db::set_disabled(db, &username, false).await,
                &username,
                "enabled",
            )?;
        }
        UserCommand::Revoke { username } => {
            report(
                db::revoke_tokens(db, &username).await,
                &username,
                "every earlier token is revoked",
            )?;
        }
        UserCommand::List => {
            println!(
                "{:<24} {:<8} {:<32} full name",
                "username", "status", "email"
            );
            for u in db::list_users(db).await.map_err(db_error)? {
                let status = if u.disabled { "disabled" } else { "active" };
                println!(
                    "{:<24} {:<8} {:<32} {}",
                    u.username,
                    status,
                    u.email.as_deref().unwrap_or("-"),
                    u.full_name.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}

/// Prints `<username>: <done>` when the change found its user, else says there is none.
fn report(outcome: Result<bool, sea_orm::DbErr>, username: &str, done: &str) -> Result<(), String> {
    match outcome.map_err(db_error)? {
        true => {
            println!("{username}: {done}");
            Ok(())
        }
        false => Err(format!("no user named {username:?}")),
    }
}

fn db_error(e: sea_orm::DbErr) -> String {
    format!("database error: {e}")
}

fn check_username(username: &str) -> Result<(), String> {
    if username.is_empty() || username.chars().count() > MAX_USERNAME_CHARS {
        return Err(format!(
            "username must be 1 to {MAX_USERNAME_CHARS} characters"
        ));
    }
    if username.chars().any(char::is_control) {
        return Err("username must not contain control characters".to_owned());
    }
    Ok(())
}

/// The new password: asked twice on a terminal, else the first line of stdin.
fn read_password() -> Result<SecretString, String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Repeat password: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("passwords do not match".to_owned());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    let password = SecretString::from(password);
    let len = password.expose_secret().len();
    if len == 0 {
        return Err("the password must not be empty".to_owned());
    }
    if len > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(password)
}
