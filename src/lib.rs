//! Ferrobase: a backend-as-a-service in one binary.
//!
//! The crate is split the way requests flow through it:
//! - [`http`]: routers and extractors only; every endpoint group has its own file.
//! - [`data`]: the store (SQLite or PostgreSQL behind one executor API), the catalog of
//!   collections, the query AST and its SQL compiler, access rules, record operations.
//! - [`files`]: file storage: buckets, file metadata, blob backends (local disk or S3),
//!   streaming uploads, signed URLs.
//! - [`metrics`]: the Prometheus recorder and the per-request measurements.
//! - [`settings`]: runtime settings stored in the database.
//! - [`logging`]: the log subscriber and its level, a runtime setting.
//! - [`app`]: the shared state and the server's start-up and shutdown.
//! - [`limits`]: every limit a request or a record is held to.

pub mod app;
pub mod auth;
pub mod config;
pub mod data;
pub mod error;
pub mod files;
pub mod http;
pub mod limits;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod ratelimit;
#[cfg(unix)]
pub mod restart;
pub mod settings;
pub mod util;

pub use app::{AppState, Server};
pub use config::Config;
pub use error::ApiError;
