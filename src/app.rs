//! Building and running the service: `App::build(settings)` connects, migrates, loads the
//! signing key and binds; `run_until_stopped()` serves until SIGINT/SIGTERM. The route
//! table is in [`routes`]. [`open_database`] is the part every command shares.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use lettre::message::Mailbox;
use migration::{Migrator, MigratorTrait};
use poem::{
    endpoint::{make_sync, BoxEndpoint},
    middleware::CatchPanic,
    Endpoint, EndpointExt, Response, Route,
};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::{
    accounts::{
        signing_keys, usernames, AccountRules, Accounts, AccountsError, MailOut, Scopes,
        SessionRules,
    },
    api::{
        self,
        assets::{DocAssets, ASSETS_PATH},
        docs::Docs,
        routing::{RouteGuard, RouteTable, DOCS_PATH, OPENAPI_PATH, REDOC_PATH},
        AppState,
    },
    auth::{
        keys::{Ed25519Key, KeyError, KeySet},
        password::PasswordHasher,
        password_policy,
        refresh_token::RefreshTokenKey,
        throttle,
        token::{JwtAlgorithm, SigningKey, SigningKeyError, TokenAuthority, TokenSettings},
    },
    config::{PublicUrl, ServeArgs, Settings, SignupMode},
    db::{self, Db, NewUser},
    error::Error,
    mail::{Composer, Delivery, Outbox, Relay, Sender},
    metrics::{HttpMetrics, Metrics},
    server::{self, Limits},
    telemetry::RequestLog,
};

/// How long in-flight requests get to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Name of the generated signing key in `server_secrets`.
const GENERATED_KEY_NAME: &str = "jwt_signing_key";

/// Why the service could not start; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[source] sea_orm::DbErr),
    #[error("cannot open the database: {0}")]
    SqliteFile(String),
    #[error(
        "cannot open the database: {0} (SQLite needs to write the file and, for its \
         write-ahead log, the directory it is in)"
    )]
    SqliteOpen(#[source] sea_orm::DbErr),
    #[error(
        "cannot open the database: {0} (no connection within {secs} s: is the database \
         server running and reachable?)",
        secs = db::CONNECT_TIMEOUT.as_secs()
    )]
    Unreachable(#[source] sea_orm::DbErr),
    #[error("cannot migrate the database: {0}")]
    Migration(#[source] sea_orm::DbErr),
    #[error("cannot read --secret-key-file {path}: {source}")]
    SecretKeyFile { path: String, source: io::Error },
    #[error("invalid signing key: {0}")]
    SecretKey(#[from] SigningKeyError),
    #[error("cannot read --jwt-private-key-file {path}: {source}")]
    PrivateKeyFile { path: String, source: io::Error },
    #[error("invalid --jwt-private-key-file {path}: {source}")]
    PrivateKey { path: String, source: KeyError },
    #[error("cannot load the Ed25519 signing keys: {0}")]
    SigningKeys(#[source] AccountsError),
    #[error("cannot start password hashing workers: {0}")]
    Workers(#[source] io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("{0}")]
    Mail(String),
}

pub struct App {
    listener: TcpListener,
    endpoint: BoxEndpoint<'static>,
    local_addr: SocketAddr,
    /// The Prometheus listener, when `METRICS_BIND` is set.
    metrics: Option<(TcpListener, BoxEndpoint<'static>, SocketAddr)>,
    limits: Limits,
    db: Db,
    accounts: Accounts,
    /// Set when the signing keys live in the database: reloaded this often.
    key_reload_period: Option<Duration>,
    /// Delivers the outbox, when mail is configured (or `--demo` logs it).
    sender: Option<Sender>,
}

impl App {
    /// Everything up to a bound listener; `serve.bind` may use port 0.
    pub async fn build(settings: &Settings, serve: &ServeArgs) -> Result<Self, StartupError> {
        let db = open_database(settings).await?;
        if serve.demo {
            seed_demo_users(&db).await.map_err(StartupError::Database)?;
        }
        let mut state = app_state(settings, db.clone()).await?;
        let key_reload_period = state
            .accounts
            .reloads_signing_keys()
            .then(|| signing_keys::reload_period(settings.jwks_max_age()));
        let (listener, local_addr) = bind(serve.bind).await?;
        let (rules, sender) = account_rules(settings, serve, &db, local_addr)?;
        state.accounts = state.accounts.clone().with_rules(rules);
        let accounts = state.accounts.clone();
        if !local_addr.ip().to_canonical().is_loopback()
            && settings.public_url.is_none()
            && settings.jwt_issuer.is_none()
        {
            tracing::warn!(
                addr = %local_addr,
                "listening beyond loopback without PUBLIC_URL or JWT_ISSUER: the URLs the \
                 metadata names follow each request's Host header (and are sent with \
                 Cache-Control: no-store); set PUBLIC_URL to the URL clients reach gatehouse at"
            );
        }
        let metrics = match settings.metrics_bind {
            Some(addr) => {
                let (listener, local_addr) = bind(addr).await?;
                let endpoint = state
                    .metrics
                    .endpoint(state.accounts.hasher().clone())
                    .catch_all_error(|err| async move { err.into_response() })
                    .with(server::security_headers())
                    .boxed();
                Some((listener, endpoint, local_addr))
            }
            None => None,
        };
        Ok(Self {
            listener,
            db,
            accounts,
            key_reload_period,
            sender,
            endpoint: routes(state, &settings.root_path).boxed(),
            local_addr,
            metrics,
            limits: Limits {
                header_read_timeout: settings.client_timeout(),
                shutdown_grace: SHUTDOWN_GRACE,
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the Prometheus metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, _, addr)| *addr)
    }

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        tracing::info!(addr = %self.local_addr, "gatehouse listening");
        let reload = self
            .key_reload_period
            .map(|period| tokio::spawn(reload_signing_keys(self.accounts.clone(), period)));
        let (stop_sender, stopped) = tokio::sync::watch::channel(false);
        let sender = self.sender.map(|sender| tokio::spawn(sender.run(stopped)));
        let purge = tokio::spawn(purge_expired(self.db, self.accounts));
        // Metrics are served until the API stops; a scrape in flight is simply cut off.
        let metrics = self.metrics.map(|(listener, endpoint, addr)| {
            tracing::info!(%addr, "metrics listening");
            tokio::spawn(server::serve(
                listener,
                endpoint,
                self.limits,
                std::future::pending(),
            ))
        });
        let served =
            server::serve(self.listener, self.endpoint, self.limits, shutdown_signal()).await;
        purge.abort();
        // A delivery in progress finishes (within the grace), so it is not sent twice.
        let _ = stop_sender.send(true);
        if let Some(sender) = sender {
            if tokio::time::timeout(SHUTDOWN_GRACE, sender).await.is_err() {
                tracing::warn!("the mail sender did not stop in time");
            }
        }
        if let Some(reload) = reload {
            reload.abort();
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        tracing::info!("gatehouse stopped");
        served
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let bind_error = |source| StartupError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local_addr))
}

/// Connects and migrates: what every command that touches the database needs first.
pub async fn open_database(settings: &Settings) -> Result<Db, StartupError> {
    let url = &settings.database_url;
    if let Some(problem) = db::sqlite_file_problem(url) {
        return Err(StartupError::SqliteFile(problem));
    }
    db::sqlite_file::create_private(url)
        .map_err(|e| StartupError::SqliteFile(format!("cannot create the SQLite file: {e}")))?;
    let db = db::connect(url).await.map_err(|e| {
        if db::is_sqlite_cannot_open(&e) {
            StartupError::SqliteOpen(e)
        } else if db::is_connect_timeout(&e) {
            StartupError::Unreachable(e)
        } else {
            StartupError::Database(e)
        }
    })?;
    for (file, mode) in db::sqlite_file::accessible_to_others(url) {
        tracing::warn!(
            "the SQLite file {} has mode {mode:04o}: other local users can read it, and it \
             holds the signing key unless SECRET_KEY or SECRET_KEY_FILE is set; \
             run `chmod 600` on it and its -wal and -shm files",
            file.display()
        );
    }
    let lock = db::migration_lock(&db)
        .await
        .map_err(StartupError::Migration)?;
    Migrator::up(&db, None)
        .await
        .map_err(StartupError::Migration)?;
    // Under the lock, so replicas starting together record them one after the other. Not
    // a reason to refuse to start: names are still checked against the keys recorded.
    match usernames::record_look_alike_keys(&db).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(users = n, "recorded the look-alike keys of existing users"),
        Err(e) => tracing::warn!(
            error = %e,
            "could not record the look-alike keys of existing users; retried at the next start"
        ),
    }
    if let Some(lock) = lock {
        lock.commit().await.map_err(StartupError::Migration)?;
    }
    Ok(db)
}

/// The rules of signup, verification and reset, and the mail sender: through `SMTP_URL`
/// (which needs `PUBLIC_URL` for links and `MAIL_FROM`), else into the log under `--demo`
/// (links to the bound address unless `PUBLIC_URL` is set), else none (the endpoints
/// that send mail answer 503).
fn account_rules(
    settings: &Settings,
    serve: &ServeArgs,
    db: &Db,
    local_addr: SocketAddr,
) -> Result<(AccountRules, Option<Sender>), StartupError> {
    password_policy::load_common_passwords();
    let smtp_url = settings.smtp_url().map_err(StartupError::Mail)?;
    let delivery = match smtp_url {
        Some(url) => {
            if settings.public_url.is_none() {
                return Err(StartupError::Mail(
                    "SMTP_URL is set but PUBLIC_URL is not: mails link to PUBLIC_URL (a link \
                     built from a request's Host header could be poisoned); set it to the URL \
                     people reach gatehouse at"
                        .to_owned(),
                ));
            }
            if settings.mail_from.is_none() {
                return Err(StartupError::Mail(
                    "SMTP_URL is set but MAIL_FROM is not: set it to the address mails come \
                     from, like \"gatehouse <noreply@example.com>\""
                        .to_owned(),
                ));
            }
            if url.sends_password_in_clear() {
                tracing::warn!(
                    smtp_url = %url.redacted(),
                    "SMTP_URL sends the relay's password unencrypted: add ?tls=required or use smtps://"
                );
            }
            let relay =
                Relay::new(url).map_err(|e| StartupError::Mail(format!("SMTP_URL: {e}")))?;
            tracing::info!(relay = %relay.shown(), "mail goes through the relay");
            Some(Delivery::Relay(relay))
        }
        None if serve.demo => {
            tracing::info!("no SMTP_URL: --demo writes each mail to this log instead");
            Some(Delivery::Log)
        }
        None => None,
    };
    let from = settings
        .mail_from
        .clone()
        .unwrap_or_else(|| Mailbox::new(Some("gatehouse".to_owned()), demo_sender()));
    let base = match &settings.public_url {
        Some(url) => url.clone(),
        None => PublicUrl::parse(&format!("http://{local_addr}"))
            .map_err(|e| StartupError::Mail(format!("links to {local_addr}: {e}")))?,
    };
    let outbox = Outbox::default();
    let sender = delivery.map(|delivery| Sender {
        db: db.clone(),
        delivery,
        from: from.email.to_string(),
        retry_max: settings.mail_retry_max(),
        outbox: outbox.clone(),
    });
    let signup_open = match settings.signup {
        Some(mode) => mode == SignupMode::Open,
        None => serve.demo,
    };
    let rules = AccountRules {
        signup_open,
        require_verified_email: settings.require_verified_email,
        password_policy: settings.password_policy(),
        reset_token_lifetime: settings.reset_token_lifetime(),
        mail_per_address_per_hour: settings.mail_per_address_per_hour,
        mail: sender.as_ref().map(|_| MailOut {
            composer: Composer::new(from, base),
            outbox,
        }),
    };
    Ok((rules, sender))
}

/// The sender of the demo's logged mails: `gatehouse@localhost`, a valid address.
fn demo_sender() -> lettre::Address {
    lettre::Address::new_dangerous("gatehouse", "localhost")
}

/// What the handlers need besides the database: the signing key, the hashing pool and
/// the limits. Only `serve` starts them.
async fn app_state(settings: &Settings, db: Db) -> Result<AppState, StartupError> {
    // Under EdDSA too: refresh tokens are keyed from it.
    let key = signing_key(settings, &db).await?;
    let tokens = token_authority(settings, &key, &db).await?;
    let reloading =
        tokens.algorithm() == JwtAlgorithm::EdDsa && settings.jwt_private_key_file.is_none();
    let workers = settings
        .hash_workers
        .map_or_else(PasswordHasher::cores, usize::from);
    let queue = workers * usize::from(settings.hash_queue_per_worker);
    let hasher = PasswordHasher::new(workers, queue).map_err(StartupError::Workers)?;
    tracing::debug!(workers, queue, "password hashing pool started");
    let sessions = SessionRules {
        refresh_lifetime: settings.refresh_token_lifetime(),
        reuse_interval: settings.refresh_reuse_interval(),
        max_per_user: settings.max_sessions_per_user,
        key: RefreshTokenKey::new(&key),
    };
    Ok(AppState {
        accounts: {
            let accounts = Accounts::new(
                db,
                tokens,
                hasher,
                settings.login_limits(),
                settings.default_scopes,
                sessions,
            );
            if reloading {
                accounts.reloading_signing_keys()
            } else {
                accounts
            }
        },
        jwks_max_age: settings.jwks_max_age(),
        public_url: settings.public_url.clone(),
        jwt_issuer: settings.jwt_issuer.clone(),
        root_path: settings.root_path.as_str().into(),
        client_timeout: settings.client_timeout(),
        trusted_proxies: settings.trusted_proxies.clone().into(),
        metrics: Metrics::new(),
    })
}

/// The token rules of `JWT_ALGORITHM` with their keys: under HS256 the shared secret
/// `key`, under EdDSA the key of `JWT_PRIVATE_KEY_FILE`, else the database's keys.
async fn token_authority(
    settings: &Settings,
    key: &SigningKey,
    db: &Db,
) -> Result<TokenAuthority, StartupError> {
    let token_settings = TokenSettings {
        lifetime: settings.token_lifetime(),
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
    };
    Ok(match settings.jwt_algorithm {
        JwtAlgorithm::Hs256 => TokenAuthority::new(key, token_settings),
        JwtAlgorithm::EdDsa => {
            let keys = match &settings.jwt_private_key_file {
                Some(path) => KeySet::single(private_key_from_file(path)?),
                None => signing_keys::load_key_set(db, settings.token_lifetime())
                    .await
                    .map_err(StartupError::SigningKeys)?,
            };
            TokenAuthority::eddsa(keys, token_settings)
        }
    })
}

/// The Ed25519 key of `--jwt-private-key-file`, with the rules of a secret key file.
pub fn private_key_from_file(path: &std::path::Path) -> Result<Ed25519Key, StartupError> {
    let shown = || path.display().to_string();
    let bytes = read_key_file(path).map_err(|source| StartupError::PrivateKeyFile {
        path: shown(),
        source,
    })?;
    let pem = String::from_utf8_lossy(&bytes);
    Ed25519Key::from_pem(&pem).map_err(|source| StartupError::PrivateKey {
        path: shown(),
        source,
    })
}

/// Rereads the database's signing keys every `period`, so that this replica knows a
/// rotated key before it starts signing.
async fn reload_signing_keys(accounts: Accounts, period: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        if let Err(e) = accounts.reload_signing_keys().await {
            tracing::warn!(error = %e, "could not reload the signing keys");
        }
    }
}

/// The configured key, else the key generated once into the database so that restarts
/// and replicas sharing it agree.
async fn signing_key(settings: &Settings, db: &Db) -> Result<SigningKey, StartupError> {
    if let Some(key) = configured_signing_key(settings)? {
        return Ok(key);
    }
    let stored = db::server_secret(db, GENERATED_KEY_NAME, SigningKey::generate_hex)
        .await
        .map_err(StartupError::Database)?;
    Ok(SigningKey::new(stored.into_bytes())?)
}

/// `--secret-key-file`, else `SECRET_KEY`, checked; `None` when neither is set. `migrate`
/// checks it too, so a bad key is found before the first `serve`.
pub fn configured_signing_key(settings: &Settings) -> Result<Option<SigningKey>, StartupError> {
    if let Some(path) = &settings.secret_key_file {
        let mut bytes = read_key_file(path).map_err(|source| StartupError::SecretKeyFile {
            path: path.display().to_string(),
            source,
        })?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        return Ok(Some(SigningKey::new(bytes)?));
    }
    settings
        .secret_key
        .as_ref()
        .map(|key| SigningKey::new(key.expose_secret().as_bytes().to_vec()))
        .transpose()
        .map_err(StartupError::from)
}

/// A key file holds one key: this many bytes is plenty for any key and its newline.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// The bytes of a key file: a regular file (after symlinks) of at most
/// [`MAX_KEY_FILE_BYTES`], so that `/dev/zero`, a pipe or a log file given by mistake is
/// refused at once instead of being read without end.
fn read_key_file(path: &std::path::Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let not_regular = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a device, pipe or directory cannot hold a key)",
        )
    };
    // Checked before opening too: opening a pipe would wait for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_KEY_FILE_BYTES} bytes; a key file holds one key"),
        ));
    }
    Ok(bytes)
}

/// Deletes ended failed-login windows, expired known clients, sessions and refresh
/// tokens now and then, so the tables hold only live rows.
async fn purge_expired(db: Db, accounts: Accounts) {
    const EVERY: Duration = Duration::from_secs(600);
    // Longer than any window: a row this old has ended whatever its scope.
    const AGE: i64 = 2 * 3600;
    // Not at start-up: a fresh process has nothing of its own to purge yet.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
    loop {
        ticks.tick().await;
        let cutoff = throttle::now() - AGE;
        match db::login_failure::purge_before(&db, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged ended failed-login windows"),
            Err(e) => tracing::warn!(error = %e, "could not purge failed-login windows"),
        }
        match db::known_client::purge_expired(&db, throttle::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired known clients"),
            Err(e) => tracing::warn!(error = %e, "could not purge known clients"),
        }
        match db::email_token::purge_expired(&db, throttle::now() - AGE).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired mail tokens"),
            Err(e) => tracing::warn!(error = %e, "could not purge mail tokens"),
        }
        match accounts.purge_expired_sessions().await {
            Ok((0, 0)) => {}
            Ok((sessions, refresh_tokens)) => {
                tracing::debug!(sessions, refresh_tokens, "purged expired sessions")
            }
            Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
        }
    }
}

/// The tutorial's users: johndoe/secret (its published hash) and disabled alice/secret2,
/// holding every scope; each unless a user of that name, or one that looks like it, exists.
async fn seed_demo_users(db: &Db) -> Result<(), sea_orm::DbErr> {
    let demo = [
        NewUser {
            username: "johndoe".to_owned(),
            email: Some("johndoe@example.com".to_owned()),
            full_name: Some("John Doe".to_owned()),
            hashed_password: "$argon2id$v=19$m=65536,t=3,p=4$wagCPXjifgvUFBzq4hqe3w$CYaIb8sB+wtD+Vu/P4uod1+Qof8h+1g7bbDlBID48Rc".to_owned(),
            disabled: false,
            username_skeleton: Some(usernames::look_alike_key("johndoe")),
        },
        NewUser {
            username: "alice".to_owned(),
            email: Some("alice@example.com".to_owned()),
            full_name: Some("Alice Wonderson".to_owned()),
            hashed_password: "$argon2id$v=19$m=65536,t=3,p=4$SGHSvpimTShkAsnQIG44jg$H/oGZa5X2ZGEn3OVecVvoNHDGyw4baYXQDDe6VfII7Y".to_owned(),
            disabled: true,
            username_skeleton: Some(usernames::look_alike_key("alice")),
        },
    ];
    for user in demo {
        let name = user.username.clone();
        if db::create_user_holding_if_absent(db, user, Some(Scopes::all().to_string())).await? {
            db::user_email::mark_verified(db, &name).await?;
            tracing::info!(user = %name, "seeded demo user");
        }
    }
    Ok(())
}

/// The route table: the API and its documentation, behind the route guard.
pub fn routes(state: AppState, root_path: &str) -> impl Endpoint<Output = Response> {
    let service = api::service();
    let docs = Arc::new(Docs::new(root_path));
    let (swagger, redoc) = (Arc::clone(&docs), Arc::clone(&docs));
    Route::new()
        .at(format!("{ASSETS_PATH}/:name"), DocAssets::endpoint())
        .nest("/", service)
        .at(DOCS_PATH, make_sync(move |_| swagger.swagger_ui_page()))
        .at(REDOC_PATH, make_sync(move |_| redoc.redoc_page()))
        .at(
            OPENAPI_PATH,
            make_sync(move |_| {
                Response::builder()
                    .content_type("application/json")
                    .body(docs.openapi_json().to_owned())
            }),
        )
        .data(state.clone())
        .with(RouteGuard::new(RouteTable::new(root_path)))
        .with(HttpMetrics(state.metrics))
        // From here outwards every answer, errors included, is a response the layers
        // below can add headers to and log.
        .catch_all_error(|err| async move { err.into_response() })
        .with(CatchPanic::new().with_handler(|_| {
            poem::Error::from(Error::Internal("handler panicked".to_owned())).into_response()
        }))
        .with(server::security_headers())
        .with(RequestLog)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
