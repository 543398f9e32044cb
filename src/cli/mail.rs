//! `gatehouse mail test ADDRESS`: sends a test mail through `SMTP_URL`, at once (not
//! through the outbox), and prints what the relay answered.

use crate::{
    config::Settings,
    mail::{Composer, Relay},
};

use super::CliError;

/// Sends the test mail; `Ok` with the relay's answer, or why it was not accepted.
pub async fn test(settings: &Settings, address: &str) -> Result<(), CliError> {
    let url = settings
        .smtp_url()
        .map_err(CliError::Mail)?
        .ok_or_else(|| {
            CliError::Mail("SMTP_URL is not set: there is no relay to test".to_owned())
        })?;
    let from = settings.mail_from.clone().ok_or_else(|| {
        CliError::Mail("MAIL_FROM is not set: set the address mails come from".to_owned())
    })?;
    // The test mail has no link; the base only completes the composer.
    let base = settings
        .public_url
        .clone()
        .or_else(|| crate::config::PublicUrl::parse("http://localhost").ok())
        .ok_or_else(|| CliError::Mail("no base URL".to_owned()))?;
    let composer = Composer::new(from, base);
    let mail = composer
        .test(address)
        .map_err(|e| CliError::Mail(e.to_string()))?;
    let relay = Relay::new(url).map_err(|e| CliError::Mail(e.to_string()))?;
    println!(
        "sending a test mail to {} through {}",
        mail.recipient,
        relay.shown()
    );
    match relay
        .send(
            &composer.from_address(),
            &mail.recipient,
            mail.message.as_bytes(),
        )
        .await
    {
        Ok(answer) => {
            println!("the relay accepted it: {answer}");
            Ok(())
        }
        Err(e) => Err(CliError::Mail(format!("the mail was not accepted: {e}"))),
    }
}
