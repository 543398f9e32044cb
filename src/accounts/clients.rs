//! The OAuth clients of "Sign in with gatehouse": registering one (with its checks),
//! reading, listing and removing them, and authenticating one at the token endpoint. What
//! the admin API and `gatehouse client ...` both call; the free functions need only the
//! database, so the CLI starts no hashing threads and loads no keys for them.
//!
//! Redirect URIs are https, or http on a loopback host (RFC 8252 §7.3, §8.3), absolute,
//! without fragment (RFC 6749 §3.1.2) or userinfo, and are stored exactly as given: the
//! authorization flow compares them exactly, so nothing here normalizes them.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use url::{Host, Url};

use super::{
    openid_scopes::{self, OpenIdScopes},
    Accounts, AccountsError, Scope,
};
use crate::{
    auth::client_secret::{client_secret_matches, new_client_id, new_client_secret},
    db::{oauth_client, Db},
};

/// Longest client name, in characters.
pub const MAX_CLIENT_NAME_CHARS: usize = 100;
/// Most redirect URIs, and most post-logout redirect URIs, a client registers.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI, in characters.
pub const MAX_REDIRECT_URI_CHARS: usize = 2000;
/// What a client registered without `scopes` may ask for.
pub const DEFAULT_CLIENT_SCOPES: [&str; 5] = ["openid", "profile", "email", "me", "items"];

/// A registered client; never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub client_name: String,
    /// Has a secret and must authenticate with it; a public client uses PKCE alone.
    pub confidential: bool,
    /// Trusted by the service: its users are not asked for consent.
    pub first_party: bool,
    /// As registered; a redirect URI must equal one of them exactly.
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The scopes the client may ask for, in the order registered.
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Client {
    /// Whether `uri` is one of the redirect URIs, compared exactly.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == uri)
    }

    /// Whether `uri` is one of the post-logout redirect URIs, compared exactly.
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|u| u == uri)
    }

    fn from_row(row: oauth_client::Model) -> Result<Self, AccountsError> {
        Ok(Self {
            redirect_uris: row.redirect_uris()?,
            post_logout_redirect_uris: row.post_logout_redirect_uris()?,
            scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
            client_id: row.client_id,
            client_name: row.client_name,
            confidential: row.confidential,
            first_party: row.first_party,
            created_at: row.created_at,
        })
    }
}

/// A client to register.
#[derive(Clone, Debug)]
pub struct NewClient {
    /// 1 to [`MAX_CLIENT_NAME_CHARS`] characters, no control characters.
    pub client_name: String,
    /// 1 to [`MAX_REDIRECT_URIS`].
    pub redirect_uris: Vec<String>,
    pub confidential: bool,
    pub first_party: bool,
    /// Among [`client_scope_names`]; `None`: [`DEFAULT_CLIENT_SCOPES`].
    pub scopes: Option<Vec<String>>,
    /// 0 to [`MAX_REDIRECT_URIS`], under the redirect URIs' rules.
    pub post_logout_redirect_uris: Vec<String>,
}

/// Registers `new`: the client, and its secret when confidential (shown this once; only
/// its hash is stored).
pub async fn register_client(
    db: &Db,
    new: NewClient,
) -> Result<(Client, Option<SecretString>), AccountsError> {
    let scopes = check_new_client(&new)?;
    let (secret, secret_hash) = if new.confidential {
        let (secret, hash) = new_client_secret();
        (Some(secret), Some(hash))
    } else {
        (None, None)
    };
    let row = oauth_client::insert(
        db,
        oauth_client::NewClient {
            client_id: new_client_id(),
            client_name: new.client_name,
            secret_hash,
            confidential: new.confidential,
            first_party: new.first_party,
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: new.post_logout_redirect_uris,
            scopes: scopes.join(" "),
        },
    )
    .await?;
    Ok((Client::from_row(row)?, secret))
}

/// The client `client_id`, if registered.
pub async fn find_client(db: &Db, client_id: &str) -> Result<Option<Client>, AccountsError> {
    oauth_client::find(db, client_id)
        .await?
        .map(Client::from_row)
        .transpose()
}

/// Every client, oldest first.
pub async fn list_clients(db: &Db) -> Result<Vec<Client>, AccountsError> {
    oauth_client::list(db)
        .await?
        .into_iter()
        .map(Client::from_row)
        .collect()
}

/// Removes the client `client_id`; returns whether it was registered.
pub async fn remove_client(db: &Db, client_id: &str) -> Result<bool, AccountsError> {
    Ok(oauth_client::delete(db, client_id).await?)
}

/// The client `client_id` if `secret` authenticates it: a confidential client's must
/// match, a public client must send none. An empty `secret` counts as none (some
/// libraries send `client_secret=` or `client_id:` for public clients). Every failure,
/// an unknown client included, is the one [`AccountsError::InvalidClient`].
pub async fn authenticate_client(
    db: &Db,
    client_id: &str,
    secret: Option<&str>,
) -> Result<Client, AccountsError> {
    let row = oauth_client::find(db, client_id)
        .await?
        .ok_or(AccountsError::InvalidClient)?;
    let secret = secret.filter(|s| !s.is_empty());
    let authenticated = match (&row.secret_hash, secret) {
        (Some(stored), Some(secret)) if row.confidential => {
            client_secret_matches(&SecretString::from(secret), stored)
        }
        (_, None) => !row.confidential,
        _ => false,
    };
    if !authenticated {
        return Err(AccountsError::InvalidClient);
    }
    Client::from_row(row)
}

impl Accounts {
    /// See [`register_client`].
    pub async fn register_client(
        &self,
        new: NewClient,
    ) -> Result<(Client, Option<SecretString>), AccountsError> {
        register_client(&self.db, new).await
    }

    /// The client `client_id`, if registered.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, AccountsError> {
        find_client(&self.db, client_id).await
    }

    /// Every client, oldest first.
    pub async fn clients(&self) -> Result<Vec<Client>, AccountsError> {
        list_clients(&self.db).await
    }

    /// Removes the client `client_id`; returns whether it was registered.
    pub async fn remove_client(&self, client_id: &str) -> Result<bool, AccountsError> {
        remove_client(&self.db, client_id).await
    }

    /// See [`authenticate_client`].
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<Client, AccountsError> {
        authenticate_client(&self.db, client_id, secret).await
    }
}

/// Checks `new`; returns the scopes to store (the default when none are given), each
/// once, in the order given.
fn check_new_client(new: &NewClient) -> Result<Vec<String>, AccountsError> {
    check_client_name(&new.client_name)?;
    check_uris("redirect_uris", &new.redirect_uris, 1)?;
    check_uris(
        "post_logout_redirect_uris",
        &new.post_logout_redirect_uris,
        0,
    )?;
    let Some(scopes) = &new.scopes else {
        return Ok(DEFAULT_CLIENT_SCOPES.map(str::to_owned).to_vec());
    };
    if scopes.is_empty() {
        return Err(invalid("scopes", "a client needs at least one scope"));
    }
    let mut kept: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        if !is_client_scope(scope) {
            return Err(invalid("scopes", unknown_scope(scope)));
        }
        if !kept.contains(scope) {
            kept.push(scope.clone());
        }
    }
    Ok(kept)
}

/// Whether a client may be registered for `name`: a scope of the service or of OpenID
/// Connect.
pub fn is_client_scope(name: &str) -> bool {
    Scope::from_name(name).is_some() || OpenIdScopes::is_name(name)
}

/// Every scope a client may be registered for: the service's ([`Scope`]), then OpenID
/// Connect's.
pub fn client_scope_names() -> impl Iterator<Item = &'static str> {
    Scope::ALL
        .into_iter()
        .map(Scope::name)
        .chain(openid_scopes::NAMES)
}

fn unknown_scope(name: &str) -> String {
    let known: Vec<&str> = client_scope_names().collect();
    format!(
        "unknown scope {name:?}; a client's scopes are: {}",
        known.join(" ")
    )
}

fn check_client_name(name: &str) -> Result<(), AccountsError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_CLIENT_NAME_CHARS || name.trim().is_empty() {
        return Err(invalid(
            "client_name",
            format!("client_name must be 1 to {MAX_CLIENT_NAME_CHARS} characters, not blank"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "client_name",
            "client_name must not contain control characters",
        ));
    }
    Ok(())
}

fn check_uris(field: &'static str, uris: &[String], min: usize) -> Result<(), AccountsError> {
    if uris.len() < min || uris.len() > MAX_REDIRECT_URIS {
        let range = if min == 0 {
            format!("at most {MAX_REDIRECT_URIS}")
        } else {
            format!("{min} to {MAX_REDIRECT_URIS}")
        };
        return Err(invalid(field, format!("{field} must have {range} URIs")));
    }
    for uri in uris {
        check_redirect_uri(uri).map_err(|problem| invalid(field, format!("{uri:?} {problem}")))?;
    }
    Ok(())
}

/// Whether `uri` may be registered as a redirect URI; else what is wrong with it.
pub fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.chars().count() > MAX_REDIRECT_URI_CHARS {
        return Err("is longer than 2000 characters");
    }
    // The URL parser would drop tabs and newlines, and read `\` as `/`: what is stored
    // must be what a browser is sent to, character for character.
    if uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err("must not contain spaces, control characters or backslashes");
    }
    let https = uri.starts_with("https://");
    if !https && !uri.starts_with("http://") {
        return Err("must be an absolute https URL (or http on a loopback host)");
    }
    let url = Url::parse(uri).map_err(|_| "is not a valid URL")?;
    if url.fragment().is_some() {
        return Err("must not have a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not have user information");
    }
    let loopback = match url.host() {
        Some(Host::Domain(domain)) => domain == "localhost",
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => return Err("must have a host"),
    };
    if !https && !loopback {
        return Err("must use https; http only on a loopback host (127.0.0.1, [::1], localhost)");
    }
    Ok(())
}

fn invalid(field: &'static str, message: impl Into<String>) -> AccountsError {
    AccountsError::Invalid {
        field,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_client(confidential: bool) -> NewClient {
        NewClient {
            client_name: "Notes".to_owned(),
            redirect_uris: vec!["https://notes.example/callback".to_owned()],
            confidential,
            first_party: false,
            scopes: None,
            post_logout_redirect_uris: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_client_authenticates_with_its_secret_only_if_confidential() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::migrated_for_tests(dir.path()).await;

        let (confidential, secret) = register_client(&db, new_client(true)).await.unwrap();
        let secret = secrecy::ExposeSecret::expose_secret(&secret.unwrap()).to_owned();
        let id = confidential.client_id.as_str();
        assert_eq!(
            authenticate_client(&db, id, Some(&secret)).await.unwrap(),
            confidential,
            "the right secret"
        );
        for wrong in [Some("wrong"), Some(&secret[1..]), Some(""), None] {
            assert!(
                matches!(
                    authenticate_client(&db, id, wrong).await,
                    Err(AccountsError::InvalidClient)
                ),
                "{wrong:?}"
            );
        }

        let (public, none) = register_client(&db, new_client(false)).await.unwrap();
        assert!(none.is_none(), "a public client has no secret");
        let id = public.client_id.as_str();
        assert_eq!(authenticate_client(&db, id, None).await.unwrap(), public);
        assert_eq!(
            authenticate_client(&db, id, Some("")).await.unwrap(),
            public
        );
        for sent in [secret.as_str(), "anything"] {
            assert!(matches!(
                authenticate_client(&db, id, Some(sent)).await,
                Err(AccountsError::InvalidClient)
            ));
        }

        for unknown in ["nobody", "", "a\0b"] {
            assert!(matches!(
                authenticate_client(&db, unknown, Some(&secret)).await,
                Err(AccountsError::InvalidClient)
            ));
            assert!(matches!(
                authenticate_client(&db, unknown, None).await,
                Err(AccountsError::InvalidClient)
            ));
        }
    }

    #[test]
    fn redirect_uris_are_https_or_loopback_http_absolute_without_fragment_or_userinfo() {
        for good in [
            "https://app.example/cb",
            "https://app.example:8443/cb?x=1",
            "http://127.0.0.1:5000/cb",
            "http://[::1]/cb",
            "http://localhost:8080/",
            "https://localhost/",
        ] {
            assert_eq!(check_redirect_uri(good), Ok(()), "{good}");
        }
        for bad in [
            "http://app.example/cb",
            "http://127.0.0.2/cb",
            "http://localhost.example/cb",
            "https://app.example/cb#frag",
            "https://app.example/cb#",
            "https://user:pw@app.example/cb",
            "https://user@app.example/cb",
            "/cb",
            "app.example/cb",
            "https:app.example",
            "com.example.app:/cb",
            "javascript:alert(1)",
            "https://app.example/c b",
            "https://app.ex\tample/cb",
            "https://evil.example\\@app.example/",
            "https://",
            "",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_default_and_unknown_ones_are_refused() {
        let mut new = new_client(false);
        assert_eq!(
            check_new_client(&new).unwrap(),
            ["openid", "profile", "email", "me", "items"]
        );
        new.scopes = Some(vec!["me".into(), "openid".into(), "me".into()]);
        assert_eq!(check_new_client(&new).unwrap(), ["me", "openid"]);
        new.scopes = Some(vec!["me items".into()]);
        assert!(check_new_client(&new).is_err());
        new.scopes = Some(Vec::new());
        assert!(check_new_client(&new).is_err());
    }
}
