//! Credentials without HTTP or storage: password hashing, access tokens, one-time
//! passwords and recovery codes, and the limits on failed logins.

pub mod client_secret;
pub mod email_token;
pub mod hashing_pool;
pub mod keys;
pub mod password;
pub mod password_policy;
pub mod pkce;
pub mod recovery_code;
pub mod refresh_token;
pub mod server_secret;
pub mod throttle;
pub mod token;
pub mod totp;
