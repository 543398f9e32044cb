//! Where mail goes, decided at start-up: through `SMTP_URL` (which needs `PUBLIC_URL` for
//! its links and `MAIL_FROM`), else into the log under `--demo` (links to the bound
//! address unless `PUBLIC_URL` is set), else nowhere (the endpoints that send mail answer
//! 503). And the rules of signup, verification and reset that go with it.

use std::net::SocketAddr;

use lettre::message::Mailbox;

use super::StartupError;
use crate::{
    accounts::{AccountRules, MailOut},
    auth::password_policy,
    config::{PublicUrl, ServeArgs, Settings, SignupMode},
    db::Db,
    mail::{Composer, Delivery, Outbox, Relay, Sender},
};

/// The rules of accounts people run themselves, and the sender that delivers their mail
/// (`None` when no mail can be sent).
pub fn account_rules(
    settings: &Settings,
    serve: &ServeArgs,
    db: &Db,
    local_addr: SocketAddr,
) -> Result<(AccountRules, Option<Sender>), StartupError> {
    // Now, rather than in the first request that sets a password.
    password_policy::load_common_passwords();
    let delivery = delivery(settings, serve)?;
    let from = settings
        .mail_from
        .clone()
        .unwrap_or_else(|| Mailbox::new(Some("gatehouse".to_owned()), demo_sender()));
    let base = match &settings.public_url {
        Some(url) => url.clone(),
        None => PublicUrl::parse(&format!("http://{local_addr}"))
            .map_err(|e| StartupError::Mail(format!("links to {local_addr}: {e}")))?,
    };
    let outbox = Outbox::default();
    let sender = delivery.map(|delivery| Sender {
        db: db.clone(),
        delivery,
        from: from.email.to_string(),
        retry_max: settings.mail_retry_max(),
        outbox: outbox.clone(),
    });
    let signup_open = match settings.signup {
        Some(mode) => mode == SignupMode::Open,
        None => serve.demo,
    };
    let rules = AccountRules {
        signup_open,
        require_verified_email: settings.require_verified_email,
        password_policy: settings.password_policy(),
        reset_token_lifetime: settings.reset_token_lifetime(),
        mail_per_address_per_hour: settings.mail_per_address_per_hour,
        mail: sender.as_ref().map(|_| MailOut {
            composer: Composer::new(from, base),
            outbox,
        }),
    };
    Ok((rules, sender))
}

fn delivery(settings: &Settings, serve: &ServeArgs) -> Result<Option<Delivery>, StartupError> {
    let Some(url) = settings.smtp_url().map_err(StartupError::Mail)? else {
        if serve.demo {
            tracing::info!("no SMTP_URL: --demo writes each mail to this log instead");
            return Ok(Some(Delivery::Log));
        }
        return Ok(None);
    };
    if settings.public_url.is_none() {
        return Err(StartupError::Mail(
            "SMTP_URL is set but PUBLIC_URL is not: mails link to PUBLIC_URL (a link built \
             from a request's Host header could be poisoned); set it to the URL people reach \
             gatehouse at"
                .to_owned(),
        ));
    }
    if settings.mail_from.is_none() {
        return Err(StartupError::Mail(
            "SMTP_URL is set but MAIL_FROM is not: set it to the address mails come from, \
             like \"gatehouse <noreply@example.com>\""
                .to_owned(),
        ));
    }
    if url.sends_password_in_clear() {
        tracing::warn!(
            smtp_url = %url.redacted(),
            "SMTP_URL sends the relay's password unencrypted: add ?tls=required or use smtps://"
        );
    }
    let relay = Relay::new(url).map_err(|e| StartupError::Mail(format!("SMTP_URL: {e}")))?;
    tracing::info!(relay = %relay.shown(), "mail goes through the relay");
    Ok(Some(Delivery::Relay(Box::new(relay))))
}

/// The sender of the demo's logged mails: `gatehouse@localhost`, a valid address.
fn demo_sender() -> lettre::Address {
    lettre::Address::new_dangerous("gatehouse", "localhost")
}
