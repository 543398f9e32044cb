//! `PUBLIC_URL`: the service's base URL as its clients reach it, checked when it is read.

use std::fmt;

/// The URL clients reach the service at, with any path prefix a proxy adds
/// (`https://auth.example.com`, `https://example.com/auth`): absolute `http` or `https`,
/// with a host, without user information, query or fragment, written as the WHATWG URL
/// standard normalizes it, without a trailing `/`. A path joins to it with [`Self::join`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

const USAGE: &str = "must be the absolute http or https URL clients reach gatehouse at, \
                     like https://auth.example.com or https://example.com/auth (a host, no \
                     user:password@, '?', '#', space or control character)";

impl PublicUrl {
    /// `value` checked and normalized; the error says what a valid one looks like.
    pub fn parse(value: &str) -> Result<Self, String> {
        // The URL parser would quietly drop surrounding spaces and inner tabs and newlines.
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(USAGE.to_owned());
        }
        let url = url::Url::parse(value).map_err(|_| USAGE.to_owned())?;
        let usable = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|host| !host.is_empty())
            && url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none();
        if !usable {
            return Err(USAGE.to_owned());
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of `path` (which starts with `/`) under this one:
    /// `https://example.com/auth` and `/token` make `https://example.com/auth/token`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::PublicUrl;

    #[test]
    fn public_urls_are_normalized_and_checked() {
        for (value, normalized) in [
            ("https://auth.example.com", "https://auth.example.com"),
            ("https://auth.example.com/", "https://auth.example.com"),
            ("https://example.com/auth/", "https://example.com/auth"),
            ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
            (
                "https://Auth.Example.COM:443/a/b",
                "https://auth.example.com/a/b",
            ),
            ("https://[::1]:8443/auth", "https://[::1]:8443/auth"),
            (
                "https://bücher.example/x/../auth",
                "https://xn--bcher-kva.example/auth",
            ),
        ] {
            let url = PublicUrl::parse(value).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(url.as_str(), normalized, "{value}");
        }
        assert_eq!(
            PublicUrl::parse("https://example.com/auth/")
                .unwrap()
                .join("/verify-email"),
            "https://example.com/auth/verify-email"
        );
        for refused in [
            "",
            "auth.example.com",
            "/auth",
            "//auth.example.com",
            "ftp://auth.example.com",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://",
            "https://user:pw@auth.example.com",
            "https://user@auth.example.com",
            "https://auth.example.com/?x=1",
            "https://auth.example.com/?",
            "https://auth.example.com/#top",
            "https://auth.example.com/#",
            " https://auth.example.com",
            "https://auth.example.com ",
            "https://auth.exa\tmple.com",
            "https://auth.example.com/a\nb",
        ] {
            assert!(
                PublicUrl::parse(refused).is_err(),
                "{refused:?} was accepted"
            );
        }
    }
}
