//! The data layer: one executor API over SQLite and PostgreSQL, and the domain operations
//! built on it. Nothing here knows about HTTP.
//!
//! The backends differ only below [`Db`]: how a statement is run, how a value is bound and
//! decoded, and the few spellings in [`Dialect`]. Everything above (catalog, queries, access,
//! records) is written once and builds SQL through [`sql::SqlBuilder`].

pub mod access;
pub mod aggregate;
pub mod backup;
pub mod batch;
pub mod catalog;
pub mod collections;
pub mod dialect;
mod embed;
pub mod feed;
mod feed_pg;
pub use feed_pg::SETTINGS_TABLE;
pub mod migrations;
pub mod names;
mod postgres;
pub mod query;
pub mod read;
pub mod records;
pub mod relations;
pub mod search;
pub mod sql;
mod sqlite;
pub mod stats;
pub mod tables;
pub mod text_formats;
pub mod tx;
pub mod validation;
pub mod value;
pub mod write;

use std::path::Path;

pub use dialect::Dialect;

use crate::error::ApiError;
pub use sql::Stmt;
pub use sqlite::Synchronous;
pub use value::Value;

/// The result rows of one statement, plus how many rows it changed.
#[derive(Debug, Default, Clone)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub affected: u64,
}

/// Database failures, classified so that constraint violations reach the client as 4xx.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    UniqueViolation(String),
    #[error("{0}")]
    ForeignKeyViolation(String),
    #[error("{0}")]
    NotNullViolation(String),
    #[error("{0}")]
    CheckViolation(String),
    /// An upsert's `on_conflict` names columns without a unique constraint.
    #[error("{0}")]
    NoConflictTarget(String),
    /// A bound value the database refused for its column (wrong type, out of range).
    #[error("{0}")]
    InvalidValue(String),
    /// A number past the range of its column's type (PostgreSQL's class 22003).
    #[error("{0}")]
    OutOfRange(String),
    /// A date or time value the database refused for its column (PostgreSQL's class 22007
    /// and 22008), answered with the code SQLite's own check gives such a value.
    #[error("{0}")]
    InvalidDatetime(String),
    /// A statement marked `must_change` changed no row.
    #[error("{0}")]
    NoRowChanged(String),
    /// A cached prepared statement whose table changed shape (PostgreSQL); retried afresh.
    #[error("{0}")]
    StalePlan(String),
    /// The transaction lost to a concurrent one (PostgreSQL: a deadlock, a serialization
    /// failure); nothing of it was committed, and it is tried again.
    #[error("{0}")]
    Contended(String),
    /// A table, column or index the statement names was dropped or made by another request
    /// while this one ran (an admin's schema change racing a write).
    #[error("{0}")]
    SchemaChanged(String),
    /// SQLite: another program held the database's write lock past the busy timeout.
    #[error("{0}")]
    Busy(String),
    /// The database cannot be reached now (a lost or refused connection, a server shutting
    /// down, no connection free in time): the server's surroundings failed, not the request.
    #[error("{0}")]
    Unreachable(String),
    /// Which statement of a group failed (0-based), and why.
    #[error("{source}")]
    InStatement { index: usize, source: Box<DbError> },
    #[error("{0}")]
    Other(String),
}

/// The refusal of an upsert whose `on_conflict` names columns without a unique constraint,
/// in the same words on both backends (their own quote the statement).
pub const NO_CONFLICT_TARGET: &str = "on_conflict must name the columns of a primary key or unique constraint";

/// The refusal of integer arithmetic past 64 bits (a sum), in the same words on both backends.
pub const INTEGER_OVERFLOW: &str = "the result does not fit a 64-bit integer (integer overflow)";

/// Database failures as answers: constraint violations and refused values are the client's
/// (409, 400), anything else is the server's (500, logged).
impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        use crate::error::codes;
        match err {
            DbError::UniqueViolation(msg) => ApiError::Conflict(msg),
            DbError::ForeignKeyViolation(message) => ApiError::ConflictOf { message, code: codes::FOREIGN_KEY },
            DbError::NotNullViolation(msg) => ApiError::bad_input(codes::NOT_NULL, msg),
            DbError::CheckViolation(msg) => ApiError::bad_input(codes::CHECK, msg),
            DbError::NoConflictTarget(msg) => ApiError::bad_input(codes::NO_CONFLICT_TARGET, msg),
            DbError::InvalidValue(msg) => ApiError::bad_input(codes::INVALID_VALUE, msg),
            DbError::OutOfRange(msg) => ApiError::bad_input(codes::OUT_OF_RANGE, msg),
            DbError::InvalidDatetime(msg) => ApiError::bad_input(codes::DATETIME_FORMAT, msg),
            DbError::NoRowChanged(msg) => ApiError::NotFound(msg),
            DbError::InStatement { index, source } => ApiError::AtIndex { index, inner: Box::new((*source).into()) },
            DbError::Other(msg) => ApiError::Internal(msg),
            DbError::Unreachable(msg) => {
                tracing::error!(%msg, "the database is unreachable");
                ApiError::Unavailable("the database is unreachable; try again".into())
            }
            DbError::Busy(msg) => {
                tracing::warn!(%msg, "the database stayed locked by another program");
                ApiError::Unavailable("the database is locked by another program; try again".into())
            }
            // A plan still stale once prepared afresh: the table changed again, or the catalog
            // is behind it (the failure makes it read the table again).
            DbError::SchemaChanged(msg) | DbError::StalePlan(msg) => ApiError::ConflictOf {
                message: format!("the schema changed while this request ran ({msg}); try again"),
                code: codes::TRY_AGAIN,
            },
            DbError::Contended(msg) => {
                tracing::warn!(%msg, "a write lost to concurrent writes every time it was tried");
                ApiError::ConflictOf {
                    message: "the write met concurrent writes of the same rows; try again".into(),
                    code: codes::TRY_AGAIN,
                }
            }
        }
    }
}

impl DbError {
    /// Whether a prepared statement went stale under a schema change (see [`DbError::StalePlan`]).
    pub fn is_stale_plan(&self) -> bool {
        match self {
            DbError::StalePlan(_) => true,
            DbError::InStatement { source, .. } => source.is_stale_plan(),
            _ => false,
        }
    }

    /// Whether the transaction lost to a concurrent one (see [`DbError::Contended`]).
    pub fn is_contended(&self) -> bool {
        match self {
            DbError::Contended(_) => true,
            DbError::InStatement { source, .. } => source.is_contended(),
            _ => false,
        }
    }
}

/// The store: SQLite (embedded, the default) or PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub enum Db {
    Sqlite(sqlite::SqlitePool),
    Postgres(postgres::PgPool),
}

impl Db {
    /// Opens the SQLite database `ferrobase.db` inside `data_dir`.
    pub fn open_sqlite(data_dir: &Path, readers: usize, sync: Synchronous) -> Result<Db, DbError> {
        Ok(Db::Sqlite(sqlite::SqlitePool::open(&data_dir.join("ferrobase.db"), readers, sync)?))
    }

    /// Connects to PostgreSQL at `url` and checks that the connection works.
    pub async fn connect_postgres(url: &str, pool_size: usize) -> Result<Db, DbError> {
        Ok(Db::Postgres(postgres::PgPool::connect(url, pool_size).await?))
    }

    /// Gauges of the connections, by state: `size` and `waiting` (PostgreSQL: pool size,
    /// callers waiting for a connection, and `idle`; SQLite: threads, and jobs queued for the
    /// readers and the writer as `waiting` and `waiting_write`).
    pub fn connection_gauges(&self) -> Vec<(&'static str, f64)> {
        match self {
            Db::Postgres(pool) => {
                let (size, idle, waiting) = pool.connections();
                vec![("size", size as f64), ("idle", idle as f64), ("waiting", waiting as f64)]
            }
            Db::Sqlite(pool) => {
                let (size, reads, writes) = pool.connections();
                vec![("size", size as f64), ("waiting", reads as f64), ("waiting_write", writes as f64)]
            }
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A fixed statement with `?` placeholders in this database's spelling.
    pub fn stmt(&self, sql: &str, params: Vec<Value>) -> Stmt {
        Stmt::fixed(self.dialect(), sql, params)
    }

    /// Runs a read-only statement (on a reader connection for SQLite).
    pub async fn read(&self, stmt: Stmt) -> Result<Rows, DbError> {
        let mut rows = self.read_many(vec![stmt]).await?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// Runs several read-only statements on one connection, in one hand-off.
    pub async fn read_many(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, DbError> {
        match self {
            Db::Sqlite(pool) => pool.read_many(stmts).await,
            Db::Postgres(pool) => pool.run_many(stmts, false).await,
        }
    }

    /// Runs one writing statement; rows come back when it has a `RETURNING` clause.
    pub async fn write(&self, stmt: Stmt) -> Result<Rows, DbError> {
        let mut rows = self.write_many(vec![stmt]).await.map_err(|err| match err {
            DbError::InStatement { source, .. } => *source,
            other => other,
        })?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// Runs writing statements in one transaction: all take effect or none does. A failure
    /// is `InStatement`, naming the statement that failed.
    pub async fn write_many(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, DbError> {
        match self {
            Db::Sqlite(pool) => pool.write_many(stmts).await,
            Db::Postgres(pool) => pool.run_many(stmts, true).await,
        }
    }

    /// Runs a script of statements without parameters (schema changes, migrations) in one
    /// transaction.
    pub async fn execute_script(&self, script: String) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => pool.execute_script(script).await,
            Db::Postgres(pool) => pool.execute_script(&script).await,
        }
    }
}

/// The database and its catalog: what the domain operations in [`records`] and
/// [`collections`] work on.
pub struct Store {
    pub db: Db,
    pub catalog: catalog::Catalog,
    /// Every record written, after its commit.
    pub feed: feed::Feed,
    /// Counts of collections, kept while their tables are unchanged (PostgreSQL).
    pub counts: read::counts::CountCache,
    /// This instance's name among those sharing a PostgreSQL database (random per start).
    pub instance: String,
    /// The notification channel of the instances that share this database and schema.
    pub channel: String,
    /// Whether this instance is listening on `channel` now (PostgreSQL): while it is not, the
    /// others' changes reach it only through its periodic re-reads.
    pub listening: tokio::sync::watch::Sender<bool>,
}

impl Store {
    /// Migrates the system tables and loads the catalog.
    pub async fn open(db: Db) -> Result<Store, DbError> {
        migrations::run(&db).await?;
        let channel = feed_pg::channel(&db).await?;
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let announcer = (db.dialect() == Dialect::Postgres)
            .then(|| feed_pg::Announcer { channel: channel.clone(), instance: instance.clone() });
        let catalog = catalog::Catalog::load(db.clone(), announcer).await?;
        Ok(Store {
            db,
            catalog,
            feed: feed::Feed::default(),
            counts: Default::default(),
            instance,
            channel,
            listening: tokio::sync::watch::Sender::new(false),
        })
    }

    /// The `result` of work on `table`, passed on. When the database refused the work's
    /// statement because the table changed under it (another program or instance dropped a
    /// column or the table), the catalog reads the table again first, so that the next
    /// request is planned on the table as it is rather than refused until the periodic re-read.
    pub(crate) async fn checked<T>(&self, table: &str, result: Result<T, ApiError>) -> Result<T, ApiError> {
        if let Err(err) = &result
            && err.code() == crate::error::codes::TRY_AGAIN
            && let Err(refresh) = self.catalog.refresh(table).await
        {
            tracing::warn!(table, error = %refresh, "the table could not be read again");
        }
        result
    }
}
