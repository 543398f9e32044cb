//! Accounts: logging in, checking a bearer token, and managing users. What the HTTP API
//! and the command line both call; knows nothing of HTTP.
//!
//! `api` maps [`AccountsError`] onto its HTTP `Error`; `cli` prints it.

mod attempt;
pub mod authorize;
pub mod clients;
mod current_user;
mod email_verification;
pub mod id_token;
mod login;
pub mod mail_out;
pub mod manage;
pub mod openid_scopes;
mod password_reset;
mod scopes;
mod self_service;
mod sessions;
pub mod signing_keys;
mod signup;
pub mod totp;
pub mod usernames;

use std::sync::Arc;

use crate::{
    auth::{
        hashing_pool::{HashError, PasswordHasher},
        keys::KeyError,
        password_policy::PolicyViolation,
        throttle::{self, LoginLimits},
        token::{TokenAuthority, TokenError},
    },
    db::{group_commit::RotationQueue, hot_reads::HotReads, Db},
};

pub use clients::{Client, NewClient};
pub use current_user::{CurrentUser, Introspection, SignedIn};
pub use login::{address_key, Login};
pub use mail_out::{AccountRules, MailOut};
pub use scopes::{held as held_scopes, Scope, Scopes};
pub use sessions::{
    GrantError, Origin, SessionInfo, SessionRules, DEFAULT_LOGIN_SESSION_HOURS,
    DEFAULT_MAX_SESSIONS_PER_USER, DEFAULT_REFRESH_REUSE_INTERVAL_SECS,
    DEFAULT_REFRESH_TOKEN_EXPIRE_DAYS,
};
pub use signup::Signup;
pub use totp::{
    Enrolment, SecondFactorRules, StepUp, TotpStatus, DEFAULT_REAUTH_MAX_AGE_SECS,
    DEFAULT_TOTP_ISSUER,
};

/// Longest username accepted, in characters.
pub const MAX_USERNAME_CHARS: usize = 128;
/// Longest password accepted, in bytes: argon2 of more is only a denial-of-service lever.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Unix seconds now, as the tables store times.
fn now_secs() -> i64 {
    throttle::now()
}

/// `d` in whole seconds, as the tables store spans.
fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Why an account operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("incorrect username or password")]
    IncorrectCredentials,
    /// The password was right; the user has TOTP on and the login brought no `otp`.
    #[error("second factor required")]
    SecondFactorRequired,
    /// A wrong, spent or replayed TOTP or recovery code.
    #[error("incorrect code")]
    IncorrectCode,
    /// The sign-in is too old, or lacks the second factor, for the operation (RFC 9470).
    #[error("a more recent sign-in is required")]
    StepUpRequired(StepUp),
    #[error("no TOTP enrolment is pending")]
    NoTotpEnrolment,
    #[error("TOTP is not on")]
    TotpNotEnabled,
    #[error("bearer token rejected")]
    InvalidToken,
    /// The token is valid but lacks a scope the operation requires, or its user no longer
    /// holds it.
    #[error("token lacks a required scope")]
    InsufficientScope,
    #[error("user is disabled")]
    InactiveUser,
    /// A wrong current password where a signed-in user changes theirs.
    #[error("incorrect current password")]
    IncorrectPassword,
    #[error("too many failed logins; retry in {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    #[error("password hashing pool is saturated")]
    Busy,
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// Another user has this address (compared case-insensitively).
    #[error("another user has the address {0:?}")]
    EmailExists(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    /// Client authentication failed: an unknown client, a confidential one without its
    /// secret or with a wrong one, or a public one that sent a secret (RFC 6749 §5.2's
    /// `invalid_client`; which of them is never told).
    #[error("client authentication failed")]
    InvalidClient,
    #[error("no client with id {0:?}")]
    NoSuchClient(String),
    /// The change would take `admin` from the last enabled user holding it.
    #[error("{0:?} is the last enabled user holding the admin scope")]
    LastAdmin(String),
    /// A value outside the limits: `field` names it (as the admin API's JSON does), the
    /// message says what is wrong.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A new password the policy refuses; `field` names it.
    #[error("{violation}")]
    WeakPassword {
        field: &'static str,
        violation: PolicyViolation,
    },
    #[error("signup is closed")]
    SignupClosed,
    #[error("too many signups from this address; retry in {retry_after} s")]
    TooManySignups { retry_after: u64 },
    /// An operation that sends mail, where none can be sent.
    #[error("mail is not configured")]
    MailNotConfigured,
    /// A verification or reset token that is unknown, used, expired or dead.
    #[error("invalid or expired token")]
    InvalidEmailToken,
    /// `REQUIRE_VERIFIED_EMAIL` and the password was right, but the address is unverified.
    #[error("email not verified")]
    EmailNotVerified,
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Hashing(HashError),
    #[error("issuing a token: {0}")]
    Token(#[from] TokenError),
    #[error("stored signing key: {0}")]
    SigningKey(#[from] KeyError),
}

impl From<HashError> for AccountsError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => AccountsError::Busy,
            other => AccountsError::Hashing(other),
        }
    }
}

/// Logins and bearer checks: the storage, the token rules, the hashing pool and the
/// failed-login limits they use.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    /// The bearer check's read (see `db::hot_reads`).
    reads: HotReads,
    /// Refresh-token rotations, committed in groups (see `db::group_commit`).
    rotations: RotationQueue,
    tokens: Arc<TokenAuthority>,
    hasher: PasswordHasher,
    limits: LoginLimits,
    /// What a login without `scope` is granted; `None`: every scope the user holds.
    default_scopes: Option<Scopes>,
    sessions: Arc<SessionRules>,
    second_factor: Arc<SecondFactorRules>,
    /// Set when the signing keys live in the database and may be rotated under us.
    key_reload: Option<Arc<signing_keys::KeyReload>>,
    /// Signup, verification, reset and their mail (see `mail_out`).
    rules: Arc<AccountRules>,
}

impl Accounts {
    pub fn new(
        db: Db,
        tokens: TokenAuthority,
        hasher: PasswordHasher,
        limits: LoginLimits,
        default_scopes: Option<Scopes>,
        sessions: SessionRules,
        second_factor: SecondFactorRules,
    ) -> Self {
        Self {
            reads: HotReads::new(&db),
            rotations: RotationQueue::new(&db),
            db,
            tokens: Arc::new(tokens),
            hasher,
            limits,
            default_scopes,
            sessions: Arc::new(sessions),
            second_factor: Arc::new(second_factor),
            key_reload: None,
            rules: Arc::default(),
        }
    }

    /// Reloads the database's signing keys when a token names a key not loaded yet.
    pub fn reloading_signing_keys(mut self) -> Self {
        self.key_reload = Some(Arc::default());
        self
    }

    /// Whether logins also return a refresh token (`REFRESH_TOKEN_EXPIRE_DAYS` > 0).
    pub fn issues_refresh_tokens(&self) -> bool {
        self.sessions.refresh_lifetime.is_some()
    }

    /// Seconds a sign-in on the login page lasts (`LOGIN_SESSION_HOURS`).
    pub fn browser_session_lifetime_secs(&self) -> u64 {
        self.sessions.browser_lifetime.as_secs()
    }

    pub fn reloads_signing_keys(&self) -> bool {
        self.key_reload.is_some()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn tokens(&self) -> &TokenAuthority {
        &self.tokens
    }

    /// The hashing pool, whose queue the metrics report.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }
}
