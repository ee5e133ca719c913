//! The shared application state and the server's life cycle: start (open the store, run
//! migrations, load the catalog and settings, bind), serve, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::Auth;
use crate::config::Config;
use crate::data::{Db, DbError, Store};
use crate::files::Files;
use crate::files::blobs::{BlobError, Blobs};
use crate::files::signing::Signer;
use crate::settings::{self, Settings};

/// State shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Store,
    auth: Auth,
    files: Files,
    limiter: crate::ratelimit::RateLimiter,
    settings: Settings,
    admin_secret: String,
    generated_admin_secret: bool,
    started_at: std::time::Instant,
    /// Poked by `POST /admin/restart`.
    restart: tokio::sync::Notify,
    /// Requests this server has answered (all routes), for the stats.
    requests_served: std::sync::atomic::AtomicU64,
    /// The OpenAPI document last built, until the catalog changes.
    openapi: crate::http::openapi::Cache,
}

impl AppState {
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    pub fn openapi(&self) -> &crate::http::openapi::Cache {
        &self.inner.openapi
    }

    pub fn files(&self) -> &Files {
        &self.inner.files
    }

    pub fn limiter(&self) -> &crate::ratelimit::RateLimiter {
        &self.inner.limiter
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn admin_secret(&self) -> &str {
        &self.inner.admin_secret
    }

    /// Asks the server to hand its socket to a new process and exit (see [`crate::restart`]).
    pub fn request_restart(&self) {
        self.inner.restart.notify_one();
    }

    /// How long this server has been up.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started_at.elapsed()
    }

    pub fn requests_served(&self) -> &std::sync::atomic::AtomicU64 {
        &self.inner.requests_served
    }

    /// Whether `token` is the admin secret (compared in constant time).
    pub fn is_admin_secret(&self, token: &str) -> bool {
        crate::util::constant_time_eq(token.as_bytes(), self.inner.admin_secret.as_bytes())
    }

    /// The admin secret when this start generated it (to be shown once).
    pub fn generated_admin_secret(&self) -> Option<&str> {
        self.inner.generated_admin_secret.then_some(self.inner.admin_secret.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("database: {0}")]
    Database(#[from] DbError),
    #[error("rate limits: {0}")]
    Limiter(String),
    #[error("file storage: {0}")]
    Blobs(#[from] BlobError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(
        "{0} must be at least {MIN_SECRET_BYTES} bytes long (it protects every account); leave it unset to have one generated"
    )]
    WeakSecret(&'static str),
}

/// The shortest `ADMIN_SECRET` or `JWT_SECRET` accepted: 256 bits, what HS256 needs to be as
/// strong as its hash.
pub const MIN_SECRET_BYTES: usize = 32;

/// A started server: bound, with its state ready, not yet serving.
pub struct Server {
    state: AppState,
    listener: TcpListener,
}

impl Server {
    pub async fn start(config: Config) -> Result<Server, StartError> {
        for (name, secret) in [("ADMIN_SECRET", &config.admin_secret), ("JWT_SECRET", &config.jwt_secret)] {
            if secret.as_ref().is_some_and(|s| s.len() < MIN_SECRET_BYTES) {
                return Err(StartError::WeakSecret(name));
            }
        }
        let data_dir = config.data_dir.clone();
        crate::util::create_private_dir(&data_dir)
            .map_err(|e| StartError::DataDir(data_dir.display().to_string(), e))?;
        let db = match &config.database_url {
            Some(url) => Db::connect_postgres(url, config.pg_pool_size).await?,
            None => Db::open_sqlite(&data_dir, config.sqlite_readers, config.sqlite_synchronous)?,
        };
        let store = Store::open(db.clone()).await?;
        let (admin_secret, generated_admin_secret) = match &config.admin_secret {
            Some(secret) => (secret.clone(), false),
            None => load_or_generate(&data_dir.join("admin_secret"), "fbadmin_")
                .map_err(|e| StartError::DataDir(data_dir.display().to_string(), e))?,
        };
        let jwt_secret = match &config.jwt_secret {
            Some(secret) => secret.clone(),
            None => {
                load_or_generate(&data_dir.join("jwt_secret"), "")
                    .map_err(|e| StartError::DataDir(data_dir.display().to_string(), e))?
                    .0
            }
        };
        let settings = Settings::load(db, &jwt_secret).await?;
        let auth = Auth::new(store.db.clone(), &jwt_secret);
        let files = open_files(&config, &store, &jwt_secret)?;
        let namespace = deployment_namespace(&config, &store, &jwt_secret).await?;
        let limiter = crate::ratelimit::RateLimiter::new(config.redis_url.as_deref(), &namespace)
            .await
            .map_err(StartError::Limiter)?;
        let listener = match inherited_listener() {
            // A predecessor handed over its socket (a graceful restart).
            Some(listener) => TcpListener::from_std(listener).map_err(|e| StartError::Bind(config.addr, e))?,
            None => TcpListener::bind(config.addr).await.map_err(|e| StartError::Bind(config.addr, e))?,
        };
        let state = AppState {
            inner: Arc::new(Inner {
                config,
                store,
                auth,
                files,
                limiter,
                settings,
                admin_secret,
                generated_admin_secret,
                started_at: std::time::Instant::now(),
                restart: tokio::sync::Notify::new(),
                requests_served: Default::default(),
                openapi: Default::default(),
            }),
        };
        Ok(Server { state, listener })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let refresher = tokio::spawn(refresh_periodically(self.state.clone()));
        let purger = tokio::spawn(purge_periodically(self.state.clone()));
        let settings_follower = tokio::spawn(follow_settings(self.state.clone()));
        let sweeper = {
            let state = self.state.clone();
            tokio::spawn(async move { state.files().run_sweeper(state.store()).await })
        };
        // On PostgreSQL, the changes other instances write reach this one's feed.
        let listener = self.state.config().database_url.clone().map(|url| {
            let state = self.state.clone();
            tokio::spawn(async move { state.store().listen_for_changes(&url).await })
        });
        let router = crate::http::router(self.state.clone());
        let listener_fd = raw_fd(&self.listener);
        let (drain, draining) = tokio::sync::watch::channel(false);
        let accepting = Draining { inner: self.listener, draining };
        let shutdown = until_shutdown_or_restart(self.state.clone(), listener_fd, drain, shutdown);
        #[cfg(unix)]
        crate::restart::signal_ready();
        crate::http::serve::serve(accepting, router, self.state.config().timeouts, shutdown).await;
        refresher.abort();
        purger.abort();
        sweeper.abort();
        settings_follower.abort();
        if let Some(listener) = listener {
            listener.abort();
        }
        Ok(())
    }
}

/// The file store: blobs on local disk under the data dir, or in S3 when configured; signed
/// URLs keyed from the JWT secret, which all instances of a deployment share.
fn open_files(config: &Config, store: &Store, jwt_secret: &str) -> Result<Files, StartError> {
    let blobs = match &config.s3 {
        Some(s3) => Blobs::s3(s3)?,
        None => {
            let fsync = config.sqlite_synchronous == crate::data::Synchronous::Full;
            Blobs::local(&config.data_dir.join("storage"), fsync)?
        }
    };
    Ok(Files::new(store.db.clone(), blobs, Signer::new(jwt_secret.as_bytes()), config.max_upload_bytes))
}

/// How long a restarting server keeps the connections it accepted last before closing idle
/// ones (see [`until_shutdown_or_restart`]).
const DRAIN_BEFORE_SHUTDOWN: std::time::Duration = std::time::Duration::from_millis(500);

/// A listener that stops accepting once told to drain (the successor of a restart accepts
/// from the same socket).
struct Draining {
    inner: TcpListener,
    draining: tokio::sync::watch::Receiver<bool>,
}

impl axum::serve::Listener for Draining {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let draining = &mut self.draining;
        let drained = async move {
            // The guard it answers with is dropped at once: it must not be held while waiting.
            let _ = draining.wait_for(|drain| *drain).await.map(|_| ());
        };
        tokio::select! {
            accepted = axum::serve::Listener::accept(&mut self.inner) => accepted,
            () = drained => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The socket handed over by a predecessor, if any (Unix).
fn inherited_listener() -> Option<std::net::TcpListener> {
    #[cfg(unix)]
    return crate::restart::inherited_listener();
    #[cfg(not(unix))]
    None
}

#[cfg(unix)]
fn raw_fd(listener: &TcpListener) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(listener)
}

#[cfg(not(unix))]
fn raw_fd(_: &TcpListener) -> i32 {
    -1
}

/// Resolves when `shutdown` does, or once a restart was asked for and the successor serves
/// on the same socket (a failed restart is logged and this server goes on).
async fn until_shutdown_or_restart(
    state: AppState,
    listener_fd: i32,
    drain: tokio::sync::watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) {
    let restart = async move {
        loop {
            state.inner.restart.notified().await;
            #[cfg(unix)]
            match crate::restart::start_successor(listener_fd).await {
                Ok(()) => break,
                Err(err) => tracing::error!(%err, "restart failed; this server goes on"),
            }
            #[cfg(not(unix))]
            let _ = listener_fd;
        }
        // Stop accepting first: new connections now wait in the socket's queue for the
        // successor. Connections accepted a moment ago get time to send their requests,
        // which a graceful shutdown would otherwise take for idle and close.
        let _ = drain.send(true);
        tokio::time::sleep(DRAIN_BEFORE_SHUTDOWN).await;
    };
    tokio::select! {
        () = shutdown => {}
        () = restart => {}
    }
}

/// A name that every instance of one deployment shares and no other deployment has: from
/// the JWT secret and the database (PostgreSQL's database and schema, or SQLite's data dir),
/// hashed. Shared services (Redis) keep deployments apart by it.
async fn deployment_namespace(config: &Config, store: &Store, jwt_secret: &str) -> Result<String, StartError> {
    let database = match &config.database_url {
        Some(_) => store.database_identity().await?,
        None => {
            std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone()).display().to_string()
        }
    };
    let hash = crate::auth::crypto::sha256_hex(&format!("{jwt_secret}|{database}"));
    Ok(hash[..16].to_owned())
}

/// Keeps settings and the catalog in step with changes made by other instances.
async fn refresh_periodically(state: AppState) {
    let mut interval = tokio::time::interval(settings::REFRESH_INTERVAL);
    interval.tick().await;
    loop {
        interval.tick().await;
        if let Err(err) = state.settings().refresh().await {
            tracing::warn!(%err, "refreshing settings failed");
        }
        if let Err(err) = state.store().catalog.reload_all().await {
            tracing::warn!(%err, "refreshing the catalog failed");
        }
    }
}

/// Re-reads the settings as soon as another instance announces a change of them through the
/// change feed (PostgreSQL), rather than at the next periodic refresh. A consumer that lagged
/// may have missed one, so it re-reads then too.
async fn follow_settings(state: AppState) {
    use tokio::sync::broadcast::error::RecvError;
    let mut changes = state.store().feed.subscribe();
    loop {
        let reread = match changes.recv().await {
            Ok(event) => event.collection == crate::data::SETTINGS_TABLE,
            Err(RecvError::Lagged(_)) => true,
            Err(RecvError::Closed) => return,
        };
        if reread && let Err(err) = state.settings().refresh().await {
            tracing::warn!(%err, "re-reading the settings failed");
        }
    }
}

/// How often expired sessions and spent or expired one-time tokens are deleted.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Deletes what can never be used again (expired or revoked sessions with their refresh
/// tokens, used or expired one-time tokens), so these tables do not grow without bound.
/// Several instances may purge at once: the deletes are idempotent.
async fn purge_periodically(state: AppState) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    loop {
        interval.tick().await;
        match state.auth().purge_expired().await {
            Ok((sessions, tokens)) if sessions + tokens > 0 => {
                tracing::info!(sessions, tokens, "purged expired sessions and one-time tokens");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "purging expired sessions and tokens failed"),
        }
    }
}

/// Reads a persisted secret, or generates and persists one (readable by the owner only).
/// Returns whether it was generated now. A file there that holds no secret (empty, or not
/// text) stops the start: replacing it silently would end every session and leave the TOTP
/// secrets sealed with it unreadable.
fn load_or_generate(path: &Path, prefix: &str) -> std::io::Result<(String, bool)> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let secret = String::from_utf8(bytes).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
            return secret.map(|s| (s, false)).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} holds no secret (it is empty or not text): put the secret back, or remove the \
                         file to have a new one made, which ends every session and leaves 2FA secrets \
                         sealed with the old one unreadable",
                        path.display()
                    ),
                )
            });
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let secret = format!("{prefix}{}", crate::util::random_hex(32));
    write_private(path, &secret)?;
    Ok((secret, true))
}

/// Writes a new secret file readable by its owner only, whole or not at all: written beside
/// it, then renamed into place, so that a crash never leaves half a secret.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let staged = path.with_extension("new");
    // One left by a crash may have any mode: the mode below applies to new files only.
    let _ = std::fs::remove_file(&staged);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&staged)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&staged, path)
}
