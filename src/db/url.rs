//! Database URLs in messages: a `DATABASE_URL` may carry a password, and the drivers'
//! errors quote the URL they were given (`The connection string 'postgress://u:pw@…' has
//! no supporting driver`) when they open it. The `error:` line of a failing command goes
//! through [`redact_credentials`] first; errors of an open connection never quote it.

/// `text` with the password of `url` (the configured URL, wherever it appears as given)
/// and of every other `scheme://user:password@host` in it replaced by `***`.
pub fn redact_credentials(text: &str, url: &str) -> String {
    let text = if url.is_empty() {
        text.to_owned()
    } else {
        text.replace(url, &redact_url(url))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '\'' | '"' | '`') || c.is_whitespace())
            .unwrap_or(tail.len());
        out.push_str(&redact_userinfo(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `url` with its password, if any, replaced by `***`. The user info ends at the last `@`
/// before the query, so a password with an unencoded `/` or `@` is redacted whole; without
/// a scheme the whole string is taken for an authority (`u:pw@host/db` is a typo too).
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (head, tail) = url.split_at(start);
    let stop = tail.find(['?', '#']).unwrap_or(tail.len());
    match tail[..stop].rfind('@') {
        Some(at) => format!(
            "{head}{}{}",
            redact_userinfo(&tail[..at + 1]).trim_end_matches('@'),
            &tail[at..]
        ),
        None => url.to_owned(),
    }
}

/// `user:password@host` as `user:***@host`; anything without both left as it is.
fn redact_userinfo(authority: &str) -> String {
    let Some(at) = authority.rfind('@') else {
        return authority.to_owned();
    };
    match authority[..at].find(':') {
        Some(colon) => format!("{}***{}", &authority[..=colon], &authority[at..]),
        None => authority.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://u:pw@db:5432/x?sslmode=require"),
            "postgres://u:***@db:5432/x?sslmode=require"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(
            redact_url("sqlite://gatehouse.db?mode=rwc"),
            "sqlite://gatehouse.db?mode=rwc"
        );
        assert_eq!(
            redact_url("postgres://u:p/w@d@db/x"),
            "postgres://u:***@db/x"
        );
        assert_eq!(redact_url("u:pw@db/x"), "u:***@db/x");
        let message = "The connection string 'postgress://u:s3cret@db/x' has no supporting driver.";
        assert_eq!(
            redact_credentials(message, "postgress://u:s3cret@db/x"),
            "The connection string 'postgress://u:***@db/x' has no supporting driver."
        );
        // Another URL in the text (a driver may print it normalised) is redacted too.
        assert_eq!(
            redact_credentials(
                "error at postgresql://u:s3cret@db:5432/x: down",
                "postgres://other"
            ),
            "error at postgresql://u:***@db:5432/x: down"
        );
        assert_eq!(redact_credentials("nothing here", ""), "nothing here");
    }
}
