//! The SMTP relay of `SMTP_URL` (lettre's URL form: `smtp://[user:pass@]host[:port]
//! [?tls=required|opportunistic]`, `smtps://...` for implicit TLS), and what it answered.
//!
//! The URL may hold the relay's password: it is kept as a secret, and shown only with the
//! password replaced ([`SmtpUrl::redacted`]). Each delivery opens a connection and closes
//! it (no pool: a handful of mails needs none, and a pooled connection would go stale
//! while a relay restarts).

use std::{fmt, time::Duration};

use lettre::{
    address::{Address, Envelope},
    transport::smtp::Error as SmtpError,
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
};
use secrecy::{ExposeSecret, SecretString};

/// How long connecting, and each reply of the relay, may take.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(20);

const USAGE: &str = "must be an SMTP URL in lettre's form: smtp://[user:password@]host[:port] \
                     with an optional ?tls=required or ?tls=opportunistic (STARTTLS), or \
                     smtps://[user:password@]host[:port] for implicit TLS";

/// `SMTP_URL`, checked when it is read. Never printed with its password.
#[derive(Clone)]
pub struct SmtpUrl(SecretString);

impl SmtpUrl {
    /// `value` if lettre can connect by it; the error says what a valid one looks like
    /// (and never repeats the value, which may hold a password).
    pub fn parse(value: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(value).map_err(|_| USAGE.to_owned())?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(USAGE.to_owned());
        }
        AsyncSmtpTransport::<Tokio1Executor>::from_url(value)
            .map_err(|e| format!("{USAGE} ({e})"))?;
        Ok(Self(SecretString::from(value)))
    }

    /// The URL with its password, if any, replaced by `***`: what logs and messages show.
    pub fn redacted(&self) -> String {
        let Ok(mut url) = url::Url::parse(self.0.expose_secret()) else {
            return "<invalid SMTP_URL>".to_owned();
        };
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        url.to_string()
    }

    /// Whether the relay's password would cross the network unencrypted: plain `smtp://`
    /// without `tls=required`, to a host other than loopback.
    pub fn sends_password_in_clear(&self) -> bool {
        let Ok(url) = url::Url::parse(self.0.expose_secret()) else {
            return false;
        };
        let encrypted = url.scheme() == "smtps"
            || url
                .query_pairs()
                .any(|(k, v)| k == "tls" && v == "required");
        let loopback = match url.host() {
            // An `smtp:` URL's host is opaque to the URL parser, an address included.
            Some(url::Host::Domain(name)) => {
                name == "localhost"
                    || name
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        url.password().is_some() && !encrypted && !loopback
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({})", self.redacted())
    }
}

/// Why a mail was not delivered: what the relay answered, or why it could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// A 4xx (transient) or 5xx (permanent) reply.
    #[error("relay answered {code}: {message}")]
    Refused { code: u16, message: String },
    /// Refused connection, DNS, TLS, timeout, no common authentication mechanism, or a
    /// conversation that broke off.
    #[error("could not talk to the relay: {0}")]
    Unreachable(String),
    /// The recipient or sender is no address lettre can send to.
    #[error("cannot address the mail: {0}")]
    Address(String),
}

impl From<SmtpError> for DeliveryError {
    fn from(e: SmtpError) -> Self {
        match e.status() {
            Some(code) => DeliveryError::Refused {
                code: u16::from(code),
                message: e.to_string(),
            },
            None => DeliveryError::Unreachable(e.to_string()),
        }
    }
}

/// The relay mails are handed to.
#[derive(Clone)]
pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    shown: String,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Relay({})", self.shown)
    }
}

impl Relay {
    pub fn new(url: &SmtpUrl) -> Result<Self, DeliveryError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.0.expose_secret())
            .map_err(|e| DeliveryError::Unreachable(e.to_string()))?
            .timeout(Some(RELAY_TIMEOUT))
            .build();
        Ok(Self {
            transport,
            shown: url.redacted(),
        })
    }

    /// The relay's URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Hands `message` (RFC 5322) for `to` from `from` to the relay; what it answered.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        message: &[u8],
    ) -> Result<String, DeliveryError> {
        let address = |a: &str| {
            a.parse::<Address>()
                .map_err(|e| DeliveryError::Address(format!("{a:?}: {e}")))
        };
        let envelope = Envelope::new(Some(address(from)?), vec![address(to)?])
            .map_err(|e| DeliveryError::Address(e.to_string()))?;
        let response = self.transport.send_raw(&envelope, message).await?;
        let lines: Vec<&str> = response.message().collect();
        Ok(format!("{} {}", response.code(), lines.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_their_password() {
        let url = SmtpUrl::parse("smtp://mailer:p%40ss@relay.example.com:587?tls=required")
            .expect("valid");
        assert_eq!(
            url.redacted(),
            "smtp://mailer:***@relay.example.com:587?tls=required"
        );
        assert!(!format!("{url:?}").contains("p%40ss"));
        assert!(!url.sends_password_in_clear());
        assert!(SmtpUrl::parse("smtp://mailer:secret@relay.example.com")
            .expect("valid")
            .sends_password_in_clear());
        assert!(!SmtpUrl::parse("smtp://mailer:secret@127.0.0.1:2525")
            .expect("valid")
            .sends_password_in_clear());
        assert!(!SmtpUrl::parse("smtps://relay.example.com")
            .expect("valid")
            .sends_password_in_clear());
        for refused in [
            "relay.example.com",
            "http://relay.example.com",
            "smtp://relay.example.com?tls=bogus",
            "smtp://:secret@",
        ] {
            let e = SmtpUrl::parse(refused).expect_err("refused");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
