//! Command line and configuration: flag > environment > default.
//!
//! The server secret is read only from the environment (`SECRET_KEY`) or a file
//! (`--secret-key-file`), never from argv where `ps` would show it, and is held as a
//! secret type that cannot be printed.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use lettre::message::Mailbox;
use secrecy::SecretString;

mod public_url;

pub use public_url::PublicUrl;

use crate::{
    accounts::{
        mail_out::{DEFAULT_MAIL_PER_ADDRESS_PER_HOUR, DEFAULT_RESET_TOKEN_EXPIRE_MINUTES},
        Scopes, SecondFactorRules, SessionRules, DEFAULT_LOGIN_SESSION_HOURS,
        DEFAULT_MAX_SESSIONS_PER_USER, DEFAULT_REAUTH_MAX_AGE_SECS,
        DEFAULT_REFRESH_REUSE_INTERVAL_SECS, DEFAULT_REFRESH_TOKEN_EXPIRE_DAYS,
        DEFAULT_TOTP_ISSUER,
    },
    auth::{
        password_policy::PasswordPolicy,
        recovery_code::RecoveryCodeKey,
        refresh_token::RefreshTokenKey,
        throttle::{Limit, LoginLimits},
        token::JwtAlgorithm,
    },
    db::DEFAULT_DATABASE_URL,
    mail::{sender::DEFAULT_RETRY_MAX_SECS, SmtpUrl},
};

/// How long resource servers may cache `/.well-known/jwks.json`, by default.
pub const DEFAULT_JWKS_MAX_AGE_SECS: u64 = 300;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "OAuth2 password flow + JWT bearer service"
)]
pub struct Cli {
    /// What to do; a bare `gatehouse` serves, as `gatehouse serve` would.
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the OAuth clients of "Sign in with gatehouse".
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage the signing keys of JWT_ALGORITHM=EdDSA or RS256.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check the mail relay.
    #[command(subcommand)]
    Mail(MailCommand),
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send a test mail to ADDRESS through SMTP_URL at once, and print what the relay
    /// answered (exit status 1 if it did not accept the mail).
    Test { address: String },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its client_id, and a confidential client's secret (shown
    /// this once).
    Add {
        /// Shown on the consent page: 1 to 100 characters.
        name: String,
        /// Where the client may receive codes: https, or http on a loopback host
        /// (127.0.0.1, ::1, localhost); repeat for each (1 to 10), compared exactly.
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// The client keeps a secret (a server-side application) and gets one.
        #[arg(long)]
        confidential: bool,
        /// The service's own client: its users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// A scope the client may ask for; repeat for each (default: openid profile email
        /// me items).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Where GET /logout may send the browser afterwards; repeat for each (0 to 10).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
    },
    /// List the clients, oldest first (never a secret).
    List,
    /// Remove a client: it can no longer sign anyone in.
    Remove {
        /// The client's id; ids are base64url, so one may start with `-`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key: published at once, signing after JWKS_MAX_AGE_SECS; the
    /// current key then retires and stays published until its last token has expired.
    Rotate,
    /// Show the keys: kid, state (next, active, retired, expired) and their times.
    List,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "GATEHOUSE_BIND",
        default_value = "127.0.0.1:8000",
        hide_env_values = true
    )]
    pub bind: SocketAddr,
    /// Seed the tutorial's demo users (johndoe/secret, disabled alice/secret2) if absent.
    #[arg(long)]
    pub demo: bool,
}

/// `serve` with nothing on the command line: its flags' defaults and their environment.
#[derive(Debug, Parser)]
struct ServeDefaults {
    #[command(flatten)]
    serve: ServeArgs,
}

impl ServeArgs {
    /// What a bare `gatehouse` serves with; honours `GATEHOUSE_BIND`.
    pub fn from_env() -> Result<Self, clap::Error> {
        ServeDefaults::try_parse_from(["gatehouse"]).map(|d| d.serve)
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from a prompt, or from stdin when piped.
    Add {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        full_name: Option<String>,
        /// Create the user disabled.
        #[arg(long)]
        disabled: bool,
        /// Scopes the user holds, space separated.
        #[arg(long, default_value_t = Scopes::DEFAULT_HELD, value_parser = parse_scopes)]
        scopes: Scopes,
    },
    /// Show the scopes a user holds, or set them with `--set "me items"` (effective at the
    /// user's next request, without revoking tokens).
    Scopes {
        username: String,
        /// The new scopes, space separated (`""` for none).
        #[arg(long, value_parser = parse_scopes)]
        set: Option<Scopes>,
    },
    /// Set a new password (prompt or stdin) and revoke the user's tokens.
    Passwd { username: String },
    /// Disable a user and revoke their tokens.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Revoke every token issued to a user so far.
    Revoke { username: String },
    /// Turn a user's second factor (TOTP) off and end their sessions, for a user who
    /// lost their authenticator app and their recovery codes.
    TotpReset { username: String },
    /// List users.
    List,
}

/// Settings shared by every subcommand. Environment values are never shown by `--help`:
/// `DATABASE_URL` may carry a password.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true,
          hide_env_values = true)]
    pub database_url: String,
    /// File holding the JWT signing key (at least 32 bytes; a trailing newline is ignored).
    #[arg(long, env = "SECRET_KEY_FILE", global = true, hide_env_values = true)]
    pub secret_key_file: Option<PathBuf>,
    /// JWT signing key, from the environment only.
    #[arg(skip = secret_key_from_env())]
    pub secret_key: Option<SecretString>,
    /// Minutes an access token stays valid.
    #[arg(long, env = "ACCESS_TOKEN_EXPIRE_MINUTES", default_value_t = 30, global = true,
          hide_env_values = true, value_parser = clap::value_parser!(u64).range(1..=43_200))]
    pub access_token_expire_minutes: u64,
    /// Days a refresh token stays valid (each refresh issues a new one); 0: no refresh
    /// tokens are issued.
    #[arg(long, env = "REFRESH_TOKEN_EXPIRE_DAYS", default_value_t = DEFAULT_REFRESH_TOKEN_EXPIRE_DAYS,
          global = true, hide_env_values = true, value_parser = clap::value_parser!(u64).range(0..=3650))]
    pub refresh_token_expire_days: u64,
    /// Seconds after a refresh during which the refresh token just before the session's
    /// current one may be presented again, answering the current one (for clients whose
    /// concurrent refreshes race); 0: presenting a spent one ends the session.
    #[arg(long, env = "REFRESH_REUSE_INTERVAL_SECS", default_value_t = DEFAULT_REFRESH_REUSE_INTERVAL_SECS,
          global = true, hide_env_values = true, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub refresh_reuse_interval_secs: u64,
    /// Live sessions per user; a login beyond it ends the user's oldest session.
    #[arg(long, env = "MAX_SESSIONS_PER_USER", default_value_t = DEFAULT_MAX_SESSIONS_PER_USER,
          global = true, hide_env_values = true, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_sessions_per_user: u64,
    /// Hours a sign-in on the login page lasts: until then, that browser authorizes
    /// further clients without the password (single sign-on), unless a client asks
    /// otherwise (`prompt=login`, `max_age`).
    #[arg(long, env = "LOGIN_SESSION_HOURS", default_value_t = DEFAULT_LOGIN_SESSION_HOURS,
          global = true, hide_env_values = true, value_parser = clap::value_parser!(u64).range(1..=720))]
    pub login_session_hours: u64,
    /// Seconds a sign-in counts as recent for changing the second factor (enrolling TOTP,
    /// turning it off, new recovery codes); with TOTP on, the sign-in must also have used it.
    #[arg(long, env = "REAUTH_MAX_AGE_SECS", default_value_t = DEFAULT_REAUTH_MAX_AGE_SECS,
          global = true, hide_env_values = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub reauth_max_age_secs: u64,
    /// Whether every `admin` operation needs a sign-in with the second factor (`true` or
    /// `false`).
    #[arg(long, env = "REQUIRE_MFA_FOR_ADMIN", default_value_t = false, global = true,
          hide_env_values = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub require_mfa_for_admin: bool,
    /// The issuer authenticator apps show next to the username (no `:`).
    #[arg(long, env = "TOTP_ISSUER", default_value = DEFAULT_TOTP_ISSUER, global = true,
          hide_env_values = true, value_parser = parse_totp_issuer)]
    pub totp_issuer: String,
    /// Path prefix under which a reverse proxy serves gatehouse (e.g. `/auth`).
    #[arg(long, env = "ROOT_PATH", default_value = "", value_parser = parse_root_path, global = true,
          hide_env_values = true)]
    pub root_path: String,
    /// Scopes a login without `scope` gets, space separated (`""` = none, the scopes
    /// chapter's behaviour); unset: every scope the user holds.
    #[arg(long, env = "DEFAULT_SCOPES", global = true, hide_env_values = true,
          value_parser = parse_scopes)]
    pub default_scopes: Option<Scopes>,
    /// Token signing algorithm: `HS256` (a shared secret, the tutorial's), `EdDSA`
    /// (Ed25519) or `RS256` (RSA): the keys of these two are published at
    /// `/.well-known/jwks.json`.
    #[arg(long, env = "JWT_ALGORITHM", default_value = "HS256", value_parser = parse_algorithm,
          global = true, hide_env_values = true)]
    pub jwt_algorithm: JwtAlgorithm,
    /// With EdDSA or RS256: a PEM file holding the private key of that algorithm (e.g.
    /// from `openssl genpkey -algorithm ed25519` or `-algorithm RSA`); unset: keys are
    /// generated and kept in the database.
    #[arg(
        long,
        env = "JWT_PRIVATE_KEY_FILE",
        global = true,
        hide_env_values = true
    )]
    pub jwt_private_key_file: Option<PathBuf>,
    /// Seconds resource servers may cache the JWKS; a rotated key starts signing only
    /// after this long, so that every cache has fetched it.
    #[arg(long, env = "JWKS_MAX_AGE_SECS", default_value_t = DEFAULT_JWKS_MAX_AGE_SECS,
          global = true, hide_env_values = true,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub jwks_max_age_secs: u64,
    /// The URL clients reach the service at, with any path prefix a proxy adds (e.g.
    /// `https://auth.example.com`); the URLs the service names start with it, whatever
    /// the request's `Host`.
    #[arg(long, env = "PUBLIC_URL", global = true, hide_env_values = true,
          value_parser = PublicUrl::parse)]
    pub public_url: Option<PublicUrl>,
    /// `iss` claim to issue and require.
    #[arg(long, env = "JWT_ISSUER", global = true, hide_env_values = true)]
    pub jwt_issuer: Option<String>,
    /// `aud` claim to issue and require.
    #[arg(long, env = "JWT_AUDIENCE", global = true, hide_env_values = true)]
    pub jwt_audience: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"],
          global = true, hide_env_values = true)]
    pub log_format: String,
    /// Password hashing threads (default: one per core).
    #[arg(long, env = "HASH_WORKERS", global = true, hide_env_values = true,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub hash_workers: Option<u16>,
    /// Logins that may wait for a hashing thread, per thread; beyond them the answer is 503.
    /// 16 is ~1.6 s of argon2 work when idle (a verify is ~100 ms; a login never waits more
    /// than `hashing_pool::MAX_QUEUE_WAIT`) and lets 16 clients per core log in
    /// without a 503 ever: refused clients that retry at once cost CPU the hashes need.
    #[arg(long, env = "HASH_QUEUE_PER_WORKER", default_value_t = 16, global = true,
          hide_env_values = true, value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub hash_queue_per_worker: u16,
    /// Failed logins per account in an hour before `/token` answers 429 for it.
    #[arg(long, env = "MAX_FAILED_LOGINS_PER_ACCOUNT", default_value_t = 100, global = true,
          hide_env_values = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_failed_logins_per_account: u32,
    /// Failed logins per client address in a minute before `/token` answers 429 to it.
    #[arg(long, env = "MAX_FAILED_LOGINS_PER_ADDRESS", default_value_t = 20, global = true,
          hide_env_values = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_failed_logins_per_address: u32,
    /// Seconds a client gets to send a request's headers, and again its body; also how
    /// long an idle keep-alive connection stays open.
    #[arg(long, env = "CLIENT_TIMEOUT_SECS", default_value_t = 10, global = true,
          hide_env_values = true, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub client_timeout_secs: u64,
    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose
    /// `X-Forwarded-For` names the client; without one, the peer address is the client.
    #[arg(long, env = "TRUSTED_PROXIES", global = true, hide_env_values = true,
          value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,
    /// Address of a separate listener serving Prometheus metrics at `/metrics` (`serve`
    /// only); no metrics listener when unset.
    #[arg(long, env = "METRICS_BIND", global = true, hide_env_values = true)]
    pub metrics_bind: Option<SocketAddr>,
    /// The SMTP relay mails go through, in lettre's URL form:
    /// `smtp://[user:password@]host[:port][?tls=required|opportunistic]` or
    /// `smtps://...` (implicit TLS). From the environment only: it may hold a password.
    #[arg(skip = smtp_url_from_env())]
    pub smtp_url: Option<Result<SmtpUrl, String>>,
    /// The sender of every mail (`gatehouse <noreply@example.com>`); required with
    /// `SMTP_URL`.
    #[arg(long, env = "MAIL_FROM", global = true, hide_env_values = true,
          value_parser = parse_mailbox)]
    pub mail_from: Option<Mailbox>,
    /// Longest wait, in seconds, between two attempts to deliver a mail (the waits double
    /// from 1 s up to it).
    #[arg(long, env = "MAIL_RETRY_MAX_SECS", default_value_t = DEFAULT_RETRY_MAX_SECS,
          global = true, hide_env_values = true,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub mail_retry_max_secs: u64,
    /// Verification and reset mails one address gets in an hour at most; further
    /// requests still answer 202.
    #[arg(long, env = "MAIL_PER_ADDRESS_PER_HOUR", default_value_t = DEFAULT_MAIL_PER_ADDRESS_PER_HOUR,
          global = true, hide_env_values = true,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub mail_per_address_per_hour: u32,
    /// Whether people may sign up (`POST /users/`): `open` or `closed` (the default, and
    /// `open` with `serve --demo`).
    #[arg(long, env = "SIGNUP", global = true, hide_env_values = true)]
    pub signup: Option<SignupMode>,
    /// Whether a password login needs a verified address (`true` or `false`).
    #[arg(long, env = "REQUIRE_VERIFIED_EMAIL", default_value_t = false, global = true,
          hide_env_values = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub require_verified_email: bool,
    /// Fewest characters of a new password (signup, reset, changes, the admin API, the
    /// CLI).
    #[arg(long, env = "PASSWORD_MIN_LENGTH", default_value_t = 8, global = true,
          hide_env_values = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub password_min_length: u16,
    /// Minutes a password reset link works.
    #[arg(long, env = "RESET_TOKEN_EXPIRE_MINUTES", default_value_t = DEFAULT_RESET_TOKEN_EXPIRE_MINUTES,
          global = true, hide_env_values = true,
          value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub reset_token_expire_minutes: u64,
}

/// Whether people may sign up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignupMode {
    Open,
    Closed,
}

/// `SMTP_URL` when set, checked (the error says what a valid one looks like, without
/// repeating it).
fn smtp_url_from_env() -> Option<Result<SmtpUrl, String>> {
    std::env::var("SMTP_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .map(|url| SmtpUrl::parse(&url))
}

fn parse_mailbox(value: &str) -> Result<Mailbox, String> {
    value.parse::<Mailbox>().map_err(|_| {
        "must be an address like noreply@example.com or \"gatehouse <noreply@example.com>\""
            .to_owned()
    })
}

/// `SECRET_KEY` when set, even empty: an empty key is refused at start, not ignored.
fn secret_key_from_env() -> Option<SecretString> {
    std::env::var("SECRET_KEY").ok().map(SecretString::from)
}

fn parse_proxy(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| "must be an IP address or a CIDR range, like 10.0.0.0/8".to_owned())
}

fn parse_algorithm(value: &str) -> Result<JwtAlgorithm, String> {
    JwtAlgorithm::ALL
        .into_iter()
        .find(|a| a.as_str() == value)
        .ok_or_else(|| "must be HS256, EdDSA or RS256".to_owned())
}

/// `TOTP_ISSUER`: shown by authenticator apps, and the label's prefix in the `otpauth://`
/// URI, where a `:` would split it (Key Uri Format).
fn parse_totp_issuer(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 64 {
        return Err("must be 1 to 64 characters".to_owned());
    }
    if value.contains(':') || value.chars().any(char::is_control) {
        return Err("must not contain ':' or control characters".to_owned());
    }
    Ok(value.to_owned())
}

fn parse_scopes(value: &str) -> Result<Scopes, String> {
    Scopes::strict(value).map_err(|e| e.to_string())
}

/// `ROOT_PATH`: a URL path only, because it ends up in redirect `Location`s and in the
/// document's `tokenUrl`, where `//evil.example` or `https://…` would send browsers (and
/// Swagger UI's passwords) to another site. One leading `/`, segments of RFC 3986 path
/// characters, no empty, `.` or `..` segment; a trailing `/` is dropped.
fn parse_root_path(value: &str) -> Result<String, String> {
    const USAGE: &str = "must be a path like /auth: one leading '/' and segments of letters, \
                         digits and -._~!$&'()*+,;=:@% (no '//', '.' or '..' segment, scheme, \
                         host, '\\', '?', '#', space or control character)";
    let path = value.strip_suffix('/').unwrap_or(value);
    if path.is_empty() {
        return Ok(String::new());
    }
    let Some(segments) = path.strip_prefix('/') else {
        return Err(USAGE.to_owned());
    };
    let path_char = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%".contains(c);
    for segment in segments.split('/') {
        let dots = segment.to_ascii_lowercase().replace("%2e", ".");
        if segment.is_empty() || dots == "." || dots == ".." || !segment.chars().all(path_char) {
            return Err(USAGE.to_owned());
        }
    }
    Ok(path.to_owned())
}

impl Settings {
    pub fn token_lifetime(&self) -> Duration {
        Duration::from_secs(self.access_token_expire_minutes * 60)
    }

    pub fn jwks_max_age(&self) -> Duration {
        Duration::from_secs(self.jwks_max_age_secs)
    }

    /// `None` when refresh tokens are disabled.
    pub fn refresh_token_lifetime(&self) -> Option<Duration> {
        (self.refresh_token_expire_days > 0)
            .then(|| Duration::from_secs(self.refresh_token_expire_days * 86_400))
    }

    pub fn refresh_reuse_interval(&self) -> Duration {
        Duration::from_secs(self.refresh_reuse_interval_secs)
    }

    pub fn mail_retry_max(&self) -> Duration {
        Duration::from_secs(self.mail_retry_max_secs)
    }

    pub fn reset_token_lifetime(&self) -> Duration {
        Duration::from_secs(self.reset_token_expire_minutes * 60)
    }

    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_length: usize::from(self.password_min_length),
        }
    }

    /// `SMTP_URL`, if set; an invalid one is an error here, where a command first needs it.
    pub fn smtp_url(&self) -> Result<Option<&SmtpUrl>, String> {
        match &self.smtp_url {
            None => Ok(None),
            Some(Ok(url)) => Ok(Some(url)),
            Some(Err(e)) => Err(format!("SMTP_URL {e}")),
        }
    }

    pub fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.client_timeout_secs)
    }

    /// The session rules of these settings, with refresh tokens keyed by `key`.
    pub fn session_rules(&self, key: RefreshTokenKey) -> SessionRules {
        SessionRules {
            refresh_lifetime: self.refresh_token_lifetime(),
            reuse_interval: self.refresh_reuse_interval(),
            max_per_user: self.max_sessions_per_user,
            browser_lifetime: Duration::from_secs(self.login_session_hours * 3600),
            key,
        }
    }

    /// The rules of the second factor, with `recovery_key` to store recovery codes under.
    pub fn second_factor_rules(&self, recovery_key: RecoveryCodeKey) -> SecondFactorRules {
        SecondFactorRules {
            issuer: self.totp_issuer.clone(),
            reauth_max_age: Duration::from_secs(self.reauth_max_age_secs),
            required_for_admin: self.require_mfa_for_admin,
            recovery_key,
        }
    }

    pub fn login_limits(&self) -> LoginLimits {
        LoginLimits {
            per_account: Limit {
                max_failures: self.max_failed_logins_per_account,
                window_secs: 3600,
            },
            per_address: Limit {
                max_failures: self.max_failed_logins_per_address,
                window_secs: 60,
            },
        }
    }

    /// Defaults with the given database, for tests and tools.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            secret_key_file: None,
            secret_key: None,
            access_token_expire_minutes: 30,
            refresh_token_expire_days: DEFAULT_REFRESH_TOKEN_EXPIRE_DAYS,
            refresh_reuse_interval_secs: DEFAULT_REFRESH_REUSE_INTERVAL_SECS,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            login_session_hours: DEFAULT_LOGIN_SESSION_HOURS,
            reauth_max_age_secs: DEFAULT_REAUTH_MAX_AGE_SECS,
            require_mfa_for_admin: false,
            totp_issuer: DEFAULT_TOTP_ISSUER.to_owned(),
            root_path: String::new(),
            jwt_algorithm: JwtAlgorithm::Hs256,
            jwt_private_key_file: None,
            jwks_max_age_secs: DEFAULT_JWKS_MAX_AGE_SECS,
            public_url: None,
            jwt_issuer: None,
            jwt_audience: None,
            default_scopes: None,
            log_format: "text".to_owned(),
            hash_workers: None,
            hash_queue_per_worker: 16,
            max_failed_logins_per_account: 100,
            max_failed_logins_per_address: 20,
            client_timeout_secs: 10,
            trusted_proxies: Vec::new(),
            metrics_bind: None,
            smtp_url: None,
            mail_from: None,
            mail_retry_max_secs: DEFAULT_RETRY_MAX_SECS,
            mail_per_address_per_hour: DEFAULT_MAIL_PER_ADDRESS_PER_HOUR,
            signup: None,
            require_verified_email: false,
            password_min_length: 8,
            reset_token_expire_minutes: DEFAULT_RESET_TOKEN_EXPIRE_MINUTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_path_is_normalised_and_checked() {
        assert_eq!(parse_root_path("").unwrap(), "");
        assert_eq!(parse_root_path("/").unwrap(), "");
        assert_eq!(parse_root_path("/auth/").unwrap(), "/auth");
        assert_eq!(
            parse_root_path("/a/b-c_d.e~f:g@h").unwrap(),
            "/a/b-c_d.e~f:g@h"
        );
        for refused in [
            "auth",
            "/a?b",
            "/a#b",
            "/a b",
            "//evil.example",
            "///evil.example",
            "/auth//x",
            "//",
            "https://evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/a/../b",
            "/..",
            "/a/%2E%2e/b",
            "/./a",
            "/a\tb",
            "/a\nb",
            "/caf\u{e9}",
            " /auth",
        ] {
            assert!(
                parse_root_path(refused).is_err(),
                "{refused:?} was accepted"
            );
        }
    }

    #[test]
    fn cli_parses_serve_as_default_and_flags_win() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::parse_from([
            "gatehouse",
            "--database-url",
            "sqlite://x.db",
            "serve",
            "--demo",
        ]);
        assert_eq!(cli.settings.database_url, "sqlite://x.db");
        assert!(matches!(
            cli.command,
            Some(Command::Serve(ServeArgs { demo: true, .. }))
        ));
    }
    #[test]
    fn jwt_algorithm_is_one_of_three_names_exactly() {
        for (name, algorithm) in [
            ("HS256", JwtAlgorithm::Hs256),
            ("EdDSA", JwtAlgorithm::EdDsa),
            ("RS256", JwtAlgorithm::Rs256),
        ] {
            assert_eq!(parse_algorithm(name), Ok(algorithm));
            let cli = Cli::try_parse_from(["gatehouse", "--jwt-algorithm", name]).unwrap();
            assert_eq!(cli.settings.jwt_algorithm, algorithm);
        }
        for bad in ["rs256", "RS512", "PS256", "none", ""] {
            assert_eq!(
                parse_algorithm(bad),
                Err("must be HS256, EdDSA or RS256".to_owned())
            );
        }
    }
}
