//! `gatehouse client add|list|remove`: the OAuth clients of "Sign in with gatehouse".
//!
//! `add` prints `client_id: ...` and, for a confidential client, `client_secret: ...`
//! lines on stdout, for scripts; that the secret is shown only this once goes to stderr.

use secrecy::ExposeSecret;

use super::CliError;
use crate::{
    accounts::{
        clients::{self, NewClient},
        AccountsError,
    },
    app,
    config::{ClientCommand, Settings},
};

pub async fn run(settings: &Settings, command: ClientCommand) -> Result<(), CliError> {
    let db = &app::open_database(settings).await?;
    match command {
        ClientCommand::Add {
            name,
            redirect_uris,
            confidential,
            first_party,
            scopes,
            post_logout_redirect_uris,
        } => {
            let new = NewClient {
                client_name: name,
                redirect_uris,
                confidential,
                first_party,
                scopes: (!scopes.is_empty()).then_some(scopes),
                post_logout_redirect_uris,
            };
            let (client, secret) = clients::register_client(db, new).await?;
            println!("client_id: {}", client.client_id);
            if let Some(secret) = secret {
                println!("client_secret: {}", secret.expose_secret());
                eprintln!(
                    "The client secret is shown only this once: gatehouse keeps only its hash."
                );
            }
        }
        ClientCommand::List => {
            println!(
                "{:<24} {:<12} {:<11} {:<40} name",
                "client_id", "type", "consent", "scopes"
            );
            for c in clients::list_clients(db).await? {
                let kind = if c.confidential {
                    "confidential"
                } else {
                    "public"
                };
                let consent = if c.first_party { "skipped" } else { "asked" };
                println!(
                    "{:<24} {kind:<12} {consent:<11} {:<40} {}",
                    c.client_id,
                    c.scopes.join(" "),
                    c.client_name
                );
                for uri in &c.redirect_uris {
                    println!("  redirect_uri: {uri}");
                }
                for uri in &c.post_logout_redirect_uris {
                    println!("  post_logout_redirect_uri: {uri}");
                }
            }
        }
        ClientCommand::Remove { client_id } => {
            if !clients::remove_client(db, &client_id).await? {
                return Err(AccountsError::NoSuchClient(client_id).into());
            }
            println!("removed client {client_id}");
        }
    }
    Ok(())
}
