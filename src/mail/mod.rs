//! Mail: what gatehouse writes ([`compose`]), the relay it hands mails to ([`relay`]), and
//! the sender that delivers the outbox ([`sender`]). No HTTP; the outbox itself is in
//! `db::mail_outbox`, written by `accounts` in the transaction of the change a mail is
//! about.

pub mod compose;
pub mod relay;
pub mod sender;

pub use compose::{ComposeError, Composer, Mail};
pub use relay::{DeliveryError, Relay, SmtpUrl};
pub use sender::{Delivery, Outbox, Sender};
