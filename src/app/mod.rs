//! Building and running the service, the composition root: `App::build(settings)`
//! connects, migrates, loads the keys and binds; `run_until_stopped()` serves until
//! SIGINT/SIGTERM. The route table is in [`routes`]. [`open_database`] is the part every
//! command shares. Beside it: where the keys come from ([`keys`]), what runs beside the
//! server (`background`), and `serve --demo`'s users (`demo`).

mod background;
mod demo;
pub mod keys;
mod mail;

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use poem::{
    endpoint::{make, make_sync, BoxEndpoint},
    middleware::CatchPanic,
    post, Endpoint, EndpointExt, Response, Route,
};
use tokio::net::TcpListener;

use crate::{
    accounts::{signing_keys, usernames, Accounts, AccountsError},
    api::{
        self,
        assets::{DocAssets, ASSETS_PATH},
        authorize::{self, CONSENT_PATH, DOCS_REDIRECT_PATH, LOGIN_PATH},
        docs::Docs,
        error::Error,
        routing::{RouteGuard, RouteTable, DOCS_PATH, OPENAPI_PATH, REDOC_PATH},
        AppState,
    },
    auth::{
        hashing_pool::PasswordHasher, keys::KeyError, recovery_code::RecoveryCodeKey,
        refresh_token::RefreshTokenKey, server_secret::ServerSecretError, token::JwtAlgorithm,
    },
    config::{ServeArgs, Settings},
    db::{self, Db},
    mail::Sender,
    metrics::HttpMetrics,
    server::{self, Limits},
    telemetry::RequestLog,
};

/// How long in-flight requests get to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    ServerSecret(#[from] ServerSecretError),
    #[error("cannot read --jwt-private-key-file {path}: {source}")]
    PrivateKeyFile { path: String, source: io::Error },
    #[error("invalid --jwt-private-key-file {path}: {source}")]
    PrivateKey { path: String, source: KeyError },
    #[error("cannot load the signing keys: {0}")]
    SigningKeys(#[source] AccountsError),
    #[error("cannot start password hashing workers: {0}")]
    Workers(#[source] io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    /// The mail settings: what is missing or wrong.
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
    /// Delivers the outbox, when mail goes anywhere.
    sender: Option<Sender>,
}

impl App {
    /// Everything up to a bound listener; `serve.bind` may use port 0.
    pub async fn build(settings: &Settings, serve: &ServeArgs) -> Result<Self, StartupError> {
        let db = open_database(settings).await?;
        if serve.demo {
            demo::seed_demo_users(&db)
                .await
                .map_err(StartupError::Database)?;
        }
        let mut state = app_state(settings, db.clone()).await?;
        let key_reload_period = state
            .accounts
            .reloads_signing_keys()
            .then(|| signing_keys::reload_period(settings.jwks_max_age()));
        let (listener, local_addr) = bind(serve.bind).await?;
        let (rules, sender) = mail::account_rules(settings, serve, &db, local_addr)?;
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
        let reload = self.key_reload_period.map(|period| {
            tokio::spawn(background::reload_signing_keys(
                self.accounts.clone(),
                period,
            ))
        });
        let (stop_sender, stopped) = tokio::sync::watch::channel(false);
        let sender = self.sender.map(|sender| tokio::spawn(sender.run(stopped)));
        let purge = tokio::spawn(background::purge_expired(self.db, self.accounts));
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

/// What the handlers need besides the database: the keys, the hashing pool and
/// the limits. Only `serve` starts them.
async fn app_state(settings: &Settings, db: Db) -> Result<AppState, StartupError> {
    // Under EdDSA and RS256 too: refresh tokens are keyed from it.
    let secret = keys::server_secret(settings, &db).await?;
    let tokens = keys::token_authority(settings, &secret, &db).await?;
    let reloading =
        tokens.algorithm() != JwtAlgorithm::Hs256 && settings.jwt_private_key_file.is_none();
    let workers = settings
        .hash_workers
        .map_or_else(PasswordHasher::cores, usize::from);
    let queue = workers * usize::from(settings.hash_queue_per_worker);
    let hasher = PasswordHasher::new(workers, queue).map_err(StartupError::Workers)?;
    tracing::debug!(workers, queue, "password hashing pool started");
    let accounts = Accounts::new(
        db,
        tokens,
        hasher,
        settings.login_limits(),
        settings.default_scopes,
        settings.session_rules(RefreshTokenKey::new(&secret)),
        settings.second_factor_rules(RecoveryCodeKey::new(&secret)),
    );
    let accounts = if reloading {
        accounts.reloading_signing_keys()
    } else {
        accounts
    };
    Ok(AppState::new(accounts, settings))
}

/// The route table: the API and its documentation, behind the route guard.
pub fn routes(state: AppState, root_path: &str) -> impl Endpoint<Output = Response> {
    let service = api::service();
    let docs = Arc::new(Docs::new(root_path));
    let (swagger, redoc, redirect_page) = (Arc::clone(&docs), Arc::clone(&docs), Arc::clone(&docs));
    Route::new()
        .at(format!("{ASSETS_PATH}/:name"), DocAssets::endpoint())
        .nest("/", service)
        .at(DOCS_PATH, make_sync(move |_| swagger.swagger_ui_page()))
        .at(REDOC_PATH, make_sync(move |_| redoc.redoc_page()))
        .at(
            DOCS_REDIRECT_PATH,
            make_sync(move |_| redirect_page.oauth2_redirect_page()),
        )
        .at(LOGIN_PATH, post(make(authorize::login_form)))
        .at(CONSENT_PATH, post(make(authorize::consent_form)))
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
