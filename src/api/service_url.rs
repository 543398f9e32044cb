//! The service's own URL, for answers that name it (today the authorization server
//! metadata), and how such an answer may be cached.
//!
//! `PUBLIC_URL` or `JWT_ISSUER` pins the URL: the answer is then the same for every
//! request, whatever its `Host`. Without either, the URL is the request's origin
//! (`Host`, or the forwarded headers of a trusted proxy) and `ROOT_PATH`, which a client
//! chooses: such an answer must not be stored by a cache and served to another client, so
//! it carries `Cache-Control: no-store` and a `Vary` naming those headers.

use poem::Request;

use super::{client_addr::request_origin, AppState};

/// How long a cache may keep an answer built from a pinned URL: it changes only when the
/// service is restarted with other settings.
pub const PINNED_MAX_AGE_SECS: u64 = 3600;

/// The URLs an answer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    /// What the answer's URLs start with: `PUBLIC_URL`, else `JWT_ISSUER`, else the
    /// request's origin and `ROOT_PATH`; never with a trailing `/`.
    base: String,
    /// The issuer identifier: `JWT_ISSUER`, else `base`.
    issuer: String,
    /// Whether `base` came from the request.
    from_request: bool,
}

impl ServiceUrl {
    /// The service's URL for `req`.
    pub fn of(req: &Request, state: &AppState) -> Self {
        let issuer = state
            .jwt_issuer
            .as_deref()
            .map(|issuer| issuer.trim_end_matches('/').to_owned());
        match (&state.public_url, issuer) {
            (Some(public_url), issuer) => Self {
                issuer: issuer.unwrap_or_else(|| public_url.to_string()),
                base: public_url.to_string(),
                from_request: false,
            },
            (None, Some(issuer)) => Self {
                base: issuer.clone(),
                issuer,
                from_request: false,
            },
            (None, None) => {
                let origin = request_origin(req, &state.trusted_proxies);
                let base = format!("{origin}{}", state.root_path);
                Self {
                    issuer: base.clone(),
                    base,
                    from_request: true,
                }
            }
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What the URLs the answer names start with.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `Cache-Control` of an answer that names this URL.
    pub fn cache_control(&self) -> String {
        if self.from_request {
            "no-store".to_owned()
        } else {
            format!("public, max-age={PINNED_MAX_AGE_SECS}")
        }
    }

    /// `Vary` of an answer that names this URL: the headers it was built from, if any.
    pub fn vary(&self, state: &AppState) -> Option<String> {
        match (self.from_request, state.trusted_proxies.is_empty()) {
            (false, _) => None,
            (true, true) => Some("Host".to_owned()),
            (true, false) => Some("Host, X-Forwarded-Host, X-Forwarded-Proto".to_owned()),
        }
    }
}
