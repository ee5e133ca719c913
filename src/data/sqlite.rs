//! The embedded SQLite store: one writer connection and a pool of reader connections, each
//! on its own thread, so blocking SQLite calls never run on the async runtime.
//!
//! WAL mode lets the readers work while the writer writes. Jobs reach the threads over
//! channels; answers come back over one-shot channels.

use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql, ffi};
use tokio::sync::oneshot;

use super::{DbError, Rows, Stmt, Value};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

#[derive(Clone)]
pub struct SqlitePool {
    inner: Arc<Channels>,
}

struct Channels {
    readers: Sender<Job>,
    writer: Sender<Job>,
}

impl SqlitePool {
    pub fn open(path: &Path, readers: usize) -> Result<Self, DbError> {
        // The writer opens first: it creates the file and switches it to WAL mode.
        let writer_conn = open_connection(path, false)?;
        let (writer_tx, writer_rx) = crossbeam_channel::unbounded::<Job>();
        spawn_worker("ferrobase-sqlite-writer".into(), writer_conn, writer_rx);

        let (readers_tx, readers_rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..readers.max(1) {
            let conn = open_connection(path, true)?;
            spawn_worker(format!("ferrobase-sqlite-reader-{i}"), conn, readers_rx.clone());
        }
        Ok(SqlitePool { inner: Arc::new(Channels { readers: readers_tx, writer: writer_tx }) })
    }

    pub async fn read_many(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, DbError> {
        run_on(&self.inner.readers, move |conn| stmts.iter().map(|s| run_stmt(conn, s)).collect()).await
    }

    pub async fn write_many(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, DbError> {
        run_on(&self.inner.writer, move |conn| {
            if stmts.len() == 1 {
                // A single statement is atomic on its own: no transaction round trips.
                return Ok(vec![run_stmt(conn, &stmts[0])?]);
            }
            let tx = conn.transaction().map_err(map_err)?;
            let results = stmts.iter().map(|s| run_stmt(&tx, s)).collect::<Result<Vec<_>, _>>()?;
            tx.commit().map_err(map_err)?;
            Ok(results)
        })
        .await
    }

    pub async fn execute_script(&self, script: String) -> Result<(), DbError> {
        run_on(&self.inner.writer, move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            tx.execute_batch(&script).map_err(map_err)?;
            tx.commit().map_err(map_err)
        })
        .await
    }
}

async fn run_on<R: Send + 'static>(
    queue: &Sender<Job>,
    work: impl FnOnce(&mut Connection) -> Result<R, DbError> + Send + 'static,
) -> Result<R, DbError> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let _ = tx.send(work(conn));
    });
    queue.send(job).map_err(|_| DbError::Other("the SQLite store is shut down".into()))?;
    rx.await.map_err(|_| DbError::Other("an SQLite worker stopped".into()))?
}

fn spawn_worker(name: String, mut conn: Connection, jobs: Receiver<Job>) {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            // Ends when every sender is gone, i.e. when the pool is dropped.
            while let Ok(job) = jobs.recv() {
                job(&mut conn);
            }
        })
        .expect("an SQLite worker thread starts");
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(256);
    // case_sensitive_like: LIKE behaves as on PostgreSQL; ILIKE is compiled separately.
    let mut pragmas = String::from(
        "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON; \
         PRAGMA cache_size = -16000; PRAGMA temp_store = MEMORY;",
    );
    if read_only {
        pragmas.push_str(" PRAGMA query_only = ON;");
    } else {
        pragmas.push_str(" PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    }
    conn.execute_batch(&pragmas).map_err(map_err)?;
    Ok(conn)
}

fn run_stmt(conn: &Connection, stmt: &Stmt) -> Result<Rows, DbError> {
    let mut prepared = conn.prepare_cached(&stmt.sql).map_err(map_err)?;
    let column_count = prepared.column_count();
    if column_count == 0 {
        let affected = prepared.execute(rusqlite::params_from_iter(stmt.params.iter())).map_err(map_err)?;
        return Ok(Rows { columns: Vec::new(), rows: Vec::new(), affected: affected as u64 });
    }
    let columns: Vec<String> = prepared.column_names().map(str::to_owned).collect();
    let mut rows = Vec::new();
    let mut cursor = prepared.query(rusqlite::params_from_iter(stmt.params.iter())).map_err(map_err)?;
    while let Some(row) = cursor.next().map_err(map_err)? {
        let mut values = Vec::with_capacity(column_count);
        for i in 0..column_count {
            values.push(from_sql(row.get_ref(i).map_err(map_err)?));
        }
        rows.push(values);
    }
    drop(cursor);
    let affected = if stmt.sql.trim_start().starts_with("SELECT") { 0 } else { rows.len() as u64 };
    Ok(Rows { columns, rows, affected })
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Text(hex::encode(b)),
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Json(v) => ToSqlOutput::Owned(rusqlite::types::Value::Text(v.to_string())),
        })
    }
}

fn map_err(err: rusqlite::Error) -> DbError {
    if let rusqlite::Error::SqliteFailure(ffi_err, msg) = &err {
        let msg = msg.clone().unwrap_or_else(|| ffi_err.to_string());
        return match ffi_err.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                DbError::UniqueViolation(unique_message(&msg))
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => DbError::ForeignKeyViolation(msg),
            ffi::SQLITE_CONSTRAINT_NOTNULL => DbError::NotNullViolation(msg),
            ffi::SQLITE_CONSTRAINT_CHECK => DbError::CheckViolation(msg),
            _ => DbError::Other(msg),
        };
    }
    DbError::Other(err.to_string())
}

/// "UNIQUE constraint failed: posts.slug" → "a record with this slug already exists".
fn unique_message(msg: &str) -> String {
    match msg.strip_prefix("UNIQUE constraint failed: ") {
        Some(cols) => {
            let fields: Vec<&str> = cols.split(", ").map(|c| c.rsplit('.').next().unwrap_or(c)).collect();
            format!("a record with this {} already exists", fields.join(", "))
        }
        None => msg.to_owned(),
    }
}
