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
        }
    }
}
