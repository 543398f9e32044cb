//! Limits on failed logins, so that guessing passwords is slow for everyone.
//!
//! Failures are counted in fixed windows, per account and per client address; the counts
//! live in the database (`db::login_failure`) so every replica sees the same ones. This
//! module only decides, from a count, whether a login may run at all.

/// Unix seconds, as the failure windows count them.
pub fn now() -> i64 {
    i64::try_from(super::token::unix_now()).unwrap_or(i64::MAX)
}

/// How long a client address stays known for a user after a successful login from it:
/// logins from it are then not subject to the account's shared lockout (30 days).
pub const KNOWN_CLIENT_SECS: i64 = 30 * 86_400;

/// At most `max_failures` failed logins per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max_failures: u32,
    pub window_secs: i64,
}

/// The failures counted in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    pub started_at: i64,
    pub failures: i64,
}

/// What `/token` enforces before it spends a password hash.
///
/// Per account: at most 100 failures an hour by default (OWASP ASVS v4 2.2.1), so an
/// online guesser gets a handful of tries a minute wherever it comes from; counted apart
/// for each address the user has logged in from before, so that guessing elsewhere does
/// not lock the owner out. Per address: a short burst limit (20 a minute), so one client
/// cannot spray many accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_account: Limit,
    pub per_address: Limit,
}

impl Limit {
    /// Seconds until this window ends if its failures have used up the limit at `now`;
    /// `None` while logins may still be tried.
    pub fn retry_after(&self, window: Option<FailureWindow>, now: i64) -> Option<u64> {
        let window = window?;
        let ends_at = window.started_at.saturating_add(self.window_secs);
        if now >= ends_at || window.failures < i64::from(self.max_failures) {
            return None;
        }
        // At least 1: `Retry-After: 0` would invite an immediate retry.
        Some(u64::try_from(ends_at - now).unwrap_or(1).max(1))
    }

    /// Where a window that is still open at `now` must have started.
    pub fn open_since(&self, now: i64) -> i64 {
        now.saturating_sub(self.window_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        max_failures: 3,
        window_secs: 60,
    };

    fn window(started_at: i64, failures: i64) -> Option<FailureWindow> {
        Some(FailureWindow {
            started_at,
            failures,
        })
    }

    #[test]
    fn logins_run_until_the_limit_is_reached() {
        assert_eq!(LIMIT.retry_after(None, 1000), None);
        assert_eq!(LIMIT.retry_after(window(1000, 2), 1010), None);
        assert_eq!(LIMIT.retry_after(window(1000, 3), 1010), Some(50));
    }

    #[test]
    fn a_used_up_window_ends_on_time() {
        assert_eq!(LIMIT.retry_after(window(1000, 50), 1059), Some(1));
        assert_eq!(LIMIT.retry_after(window(1000, 50), 1060), None);
    }

    #[test]
    fn a_window_from_the_future_still_limits() {
        // A replica's clock a little ahead: wait for its window, never a negative time.
        assert_eq!(LIMIT.retry_after(window(2000, 3), 1000), Some(1060));
    }
}
