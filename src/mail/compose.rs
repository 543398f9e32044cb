//! The mails gatehouse writes, each plain text with an HTML alternative, from the
//! templates under `templates/mail/` (compiled in; the HTML escaped by construction).
//!
//! A mail is composed once, when it is put in the outbox, into its final RFC 5322 form:
//! `Date` and `Message-ID` are fixed then, so a resend after an ambiguous failure is the
//! same message. Both parts are quoted-printable, whatever their line lengths, so every
//! mail reads back the same way. Links start with `PUBLIC_URL`, never with a request's
//! `Host`.

use std::time::Duration;

use askama::Template;
use lettre::{
    message::{
        header::{ContentTransferEncoding, ContentType},
        Mailbox, MultiPart, SinglePart,
    },
    Message,
};
use rand::RngCore;

use crate::config::PublicUrl;

/// A mail ready for the outbox.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The address as the mail names it.
    pub recipient: String,
    /// What it is for: `verify`, `reset`, `test`.
    pub kind: &'static str,
    /// The whole message, RFC 5322 (ASCII: every part is encoded).
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{0:?} is not an address a mail can be sent to")]
    Recipient(String),
    #[error("building the mail: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("rendering the mail: {0}")]
    Template(#[from] askama::Error),
}

/// Writes gatehouse's mails, from `MAIL_FROM`, with links under the public URL.
#[derive(Debug, Clone)]
pub struct Composer {
    from: Mailbox,
    base: PublicUrl,
}

#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyText<'a> {
    username: &'a str,
    email: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/verify_email.html")]
struct VerifyHtml<'a> {
    username: &'a str,
    email: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset_password.txt")]
struct ResetText<'a> {
    username: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset_password.html")]
struct ResetHtml<'a> {
    username: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "mail/test.txt")]
struct TestText;

#[derive(Template)]
#[template(path = "mail/test.html")]
struct TestHtml;

/// Path of the page a verification link opens.
pub const VERIFY_EMAIL_PATH: &str = "/verify-email";
/// Path of the page a reset link opens.
pub const RESET_PASSWORD_PATH: &str = "/reset-password";

impl Composer {
    pub fn new(from: Mailbox, base: PublicUrl) -> Self {
        Self { from, base }
    }

    /// The sender's address (the envelope's `MAIL FROM`).
    pub fn from_address(&self) -> String {
        self.from.email.to_string()
    }

    fn link(&self, path: &str, token: &str) -> String {
        format!("{}?token={token}", self.base.join(path))
    }

    /// The mail asking `username` to confirm `to` with `token`, valid for `valid`.
    pub fn verify_email(
        &self,
        to: &str,
        username: &str,
        token: &str,
        valid: Duration,
    ) -> Result<Mail, ComposeError> {
        let link = self.link(VERIFY_EMAIL_PATH, token);
        let valid_for = in_words(valid);
        let text = VerifyText {
            username,
            email: to,
            link: &link,
            valid_for: &valid_for,
        }
        .render()?;
        let html = VerifyHtml {
            username,
            email: to,
            link: &link,
            valid_for: &valid_for,
        }
        .render()?;
        self.compose(to, "verify", "Confirm your email address", text, html)
    }

    /// The mail with `username`'s reset link, valid for `valid`.
    pub fn reset_password(
        &self,
        to: &str,
        username: &str,
        token: &str,
        valid: Duration,
    ) -> Result<Mail, ComposeError> {
        let link = self.link(RESET_PASSWORD_PATH, token);
        let valid_for = in_words(valid);
        let text = ResetText {
            username,
            link: &link,
            valid_for: &valid_for,
        }
        .render()?;
        let html = ResetHtml {
            username,
            link: &link,
            valid_for: &valid_for,
        }
        .render()?;
        self.compose(to, "reset", "Reset your password", text, html)
    }

    /// The mail of `gatehouse mail test`.
    pub fn test(&self, to: &str) -> Result<Mail, ComposeError> {
        let (text, html) = (TestText.render()?, TestHtml.render()?);
        self.compose(to, "test", "gatehouse test mail", text, html)
    }

    fn compose(
        &self,
        to: &str,
        kind: &'static str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<Mail, ComposeError> {
        let mailbox: Mailbox = to
            .trim()
            .parse()
            .map_err(|_| ComposeError::Recipient(to.to_owned()))?;
        let part = |content_type: ContentType, body: String| {
            SinglePart::builder()
                .header(content_type)
                .header(ContentTransferEncoding::QuotedPrintable)
                .body(crlf(&body))
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(mailbox.clone())
            .subject(subject)
            .date_now()
            .message_id(Some(self.message_id()))
            .multipart(
                MultiPart::alternative()
                    .singlepart(part(ContentType::TEXT_PLAIN, text))
                    .singlepart(part(ContentType::TEXT_HTML, html)),
            )?;
        Ok(Mail {
            recipient: mailbox.email.to_string(),
            kind,
            message: String::from_utf8_lossy(&message.formatted()).into_owned(),
        })
    }

    /// `<128 random bits, hex @ the sender's domain>`.
    fn message_id(&self) -> String {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        format!("<{}@{}>", hex::encode(bytes), self.from.email.domain())
    }
}

/// Line ends as mail has them.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// `30 minutes`, `24 hours`, `1 hour`.
fn in_words(valid: Duration) -> String {
    let minutes = valid.as_secs() / 60;
    let (n, unit) = if minutes.is_multiple_of(60) && minutes >= 60 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// The plain-text part of a mail [`Composer`] wrote, decoded: what `--demo` logs.
pub fn text_part(message: &str) -> Option<String> {
    let start = message.find("Content-Type: text/plain")?;
    let rest = &message[start..];
    let body_start = rest.find("\r\n\r\n")? + 4;
    let body = &rest[body_start..];
    let body = &body[..body.find("\r\n--").unwrap_or(body.len())];
    let decoded = quoted_printable::decode(body, quoted_printable::ParseMode::Robust).ok()?;
    Some(String::from_utf8_lossy(&decoded).replace("\r\n", "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer() -> Composer {
        Composer::new(
            "gatehouse <noreply@accounts.example.com>".parse().unwrap(),
            PublicUrl::parse("https://accounts.example.com/auth").unwrap(),
        )
    }

    #[test]
    fn a_verification_mail_has_both_parts_a_date_a_message_id_and_the_public_link() {
        let token = "Jx1y2DkT9c8bA0qWm4nZ7pLr5sVt3uXe6yGh8iKo1Q_";
        let mail = composer()
            .verify_email(
                "Ann <ann@example.com>",
                "ann<script>",
                token,
                Duration::from_secs(86_400),
            )
            .unwrap();
        assert_eq!(mail.recipient, "ann@example.com");
        assert_eq!(mail.kind, "verify");
        let m = &mail.message;
        assert!(m.contains("\r\nDate: "), "{m}");
        assert!(m.contains("\r\nMessage-ID: <"), "{m}");
        assert!(m.contains("@accounts.example.com>\r\n"), "{m}");
        assert!(m.contains("Subject: Confirm your email address\r\n"), "{m}");
        assert!(m.contains("multipart/alternative"), "{m}");
        assert!(m.contains("Content-Type: text/html"), "{m}");
        let text = text_part(m).unwrap();
        assert!(
            text.contains(&format!(
                "\nhttps://accounts.example.com/auth/verify-email?token={token}\n"
            )),
            "{text}"
        );
        assert!(text.contains("24 hours"), "{text}");
        // The HTML part escapes what users typed.
        let html = quoted_printable::decode(m, quoted_printable::ParseMode::Robust).unwrap();
        let html = String::from_utf8_lossy(&html);
        assert!(html.contains("ann&#60;script&#62;"), "{html}");
    }

    #[test]
    fn a_reset_mail_says_how_long_its_link_works() {
        let mail = composer()
            .reset_password("ann@example.com", "ann", "t0k", Duration::from_secs(1800))
            .unwrap();
        let text = text_part(&mail.message).unwrap();
        assert!(text.contains("https://accounts.example.com/auth/reset-password?token=t0k"));
        assert!(text.contains("30 minutes"));
        assert!(!mail.message.contains("Subject: Reset your password t0k"));
    }

    #[test]
    fn an_address_that_cannot_be_mailed_is_refused() {
        assert!(matches!(
            composer().test("not an address"),
            Err(ComposeError::Recipient(_))
        ));
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(in_words(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(in_words(Duration::from_secs(3600)), "1 hour");
        assert_eq!(in_words(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(in_words(Duration::from_secs(60)), "1 minute");
    }
}
