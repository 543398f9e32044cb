//! Credentials without HTTP or storage: password hashing and access tokens.

pub mod password;
pub mod token;
