//! Start-up configuration: command-line flags and environment variables, resolved once into
//! [`Config`]. Runtime-changeable behaviour lives in [`crate::settings`] instead.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything the server needs to start. Every field has a documented default so that
/// `ferrobase serve` works on a fresh machine with no set-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`--addr`, `FERROBASE_ADDR`; default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// Directory for the SQLite database, the generated secrets and local files
    /// (`--data-dir`, `DATA_DIR`; default `./ferrobase_data`).
    pub data_dir: PathBuf,
    /// `postgres://…` selects the PostgreSQL store; `None` selects embedded SQLite
    /// (`DATABASE_URL`).
    pub database_url: Option<String>,
    /// The admin secret (`ADMIN_SECRET`); generated and persisted in the data dir when unset.
    pub admin_secret: Option<String>,
    /// The secret that signs access tokens (`JWT_SECRET`); generated and persisted in the
    /// data dir when unset. Instances sharing a PostgreSQL database must share it.
    pub jwt_secret: Option<String>,
    /// Largest JSON request body accepted, in bytes (default 10 MiB).
    pub max_body_bytes: usize,
    /// Reader connections of the SQLite store (default: one per core, at least 2). Reads are
    /// CPU-bound; more readers than cores only add thread switches and page caches.
    pub sqlite_readers: usize,
    /// Maximum connections of the PostgreSQL pool (default 16).
    pub pg_pool_size: usize,
    /// SQLite's durability (`--sqlite-synchronous`, `SQLITE_SYNCHRONOUS`; default `normal`:
    /// a process crash loses nothing acknowledged, a power loss may lose the last commits;
    /// `full` survives a power loss too, one fsync per commit group).
    pub sqlite_synchronous: crate::data::Synchronous,
    /// The largest upload to a bucket without its own `max_size_bytes`, in bytes
    /// (`--max-upload-bytes`, `MAX_UPLOAD_BYTES`; default 5 GiB).
    pub max_upload_bytes: u64,
    /// Where file contents go: `None` keeps them under `<data_dir>/storage`; `Some` puts them
    /// in an S3-compatible bucket (the `S3_*` variables).
    pub s3: Option<S3Config>,
    /// Redis for counters that instances share (rate limits); `None` counts per instance
    /// (`REDIS_URL`).
    pub redis_url: Option<String>,
    /// How long a client may take over a request's head, and over each silence within its
    /// body (`--header-timeout-secs`, `--body-idle-timeout-secs`).
    pub timeouts: crate::http::serve::Timeouts,
    /// One structured log line per request (`--log-format json` turns it on).
    pub access_log: bool,
    /// Whether `POST /admin/restart` may start a new process of this binary (set when it runs
    /// as the `ferrobase` command, on Unix; not for a server embedded in another program).
    pub restartable: bool,
}

/// An S3-compatible object store for file contents. Instances sharing a PostgreSQL database
/// must share it too.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    /// `S3_ENDPOINT`, e.g. `http://127.0.0.1:9000`; unset means AWS itself.
    pub endpoint: Option<String>,
    /// `S3_BUCKET`: the one bucket every Ferrobase bucket's files are kept in.
    pub bucket: String,
    /// `S3_REGION` (default `us-east-1`).
    pub region: String,
    /// `S3_ACCESS_KEY_ID` and `S3_SECRET_ACCESS_KEY`.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `S3_PATH_STYLE=true`: `endpoint/bucket/key` URLs instead of `bucket.endpoint/key`, as
    /// MinIO and most self-hosted stores need (default `true` when an endpoint is set).
    pub path_style: bool,
}

impl S3Config {
    /// The S3 settings of the environment, when `S3_BUCKET` is set.
    pub fn from_env() -> Option<S3Config> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let bucket = var("S3_BUCKET")?;
        let endpoint = var("S3_ENDPOINT");
        let path_style =
            var("S3_PATH_STYLE").map_or(endpoint.is_some(), |v| matches!(v.as_str(), "1" | "true" | "yes"));
        Some(S3Config {
            bucket,
            region: var("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
            access_key_id: var("S3_ACCESS_KEY_ID").unwrap_or_default(),
            secret_access_key: var("S3_SECRET_ACCESS_KEY").unwrap_or_default(),
            endpoint,
            path_style,
        })
    }
}

impl Config {
    /// A configuration with every default, storing data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: data_dir.into(),
            database_url: None,
            admin_secret: None,
            jwt_secret: None,
            max_body_bytes: 10 * 1024 * 1024,
            sqlite_readers: cores.max(2),
            pg_pool_size: 16,
            sqlite_synchronous: crate::data::Synchronous::Normal,
            max_upload_bytes: crate::limits::DEFAULT_MAX_UPLOAD_BYTES,
            s3: None,
            redis_url: None,
            timeouts: crate::http::serve::Timeouts {
                header_read: std::time::Duration::from_secs(crate::limits::DEFAULT_HEADER_TIMEOUT_SECS),
                body_idle: std::time::Duration::from_secs(crate::limits::DEFAULT_BODY_IDLE_TIMEOUT_SECS),
            },
            access_log: false,
            restartable: false,
        }
    }
}
