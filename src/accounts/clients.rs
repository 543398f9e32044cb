//! STUB until i24-clients merges (its file replaces this one).
use chrono::{DateTime, Utc};

use super::{Accounts, AccountsError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub client_name: String,
    pub confidential: bool,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Client {
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == uri)
    }
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|u| u == uri)
    }
}

impl Accounts {
    pub async fn client(&self, _client_id: &str) -> Result<Option<Client>, AccountsError> {
        Ok(None)
    }
    pub async fn authenticate_client(
        &self,
        _client_id: &str,
        _secret: Option<&str>,
    ) -> Result<Client, AccountsError> {
        Err(AccountsError::IncorrectCredentials)
    }
}
