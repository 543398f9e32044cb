//! Credentials without HTTP or storage: password hashing, access tokens, and the limits
//! on failed logins.

pub mod keys;
pub mod password;
pub mod throttle;
pub mod token;
