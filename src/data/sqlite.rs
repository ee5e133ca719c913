//! The embedded SQLite store: one writer connection and a pool of reader connections, each
//! on its own thread, so blocking SQLite calls never run on the async runtime.
//!
//! WAL mode lets the readers work while the writer writes. Jobs reach the threads over
//! channels; answers come back over one-shot channels.
//!
//! The writer commits in groups: the jobs waiting when it wakes run in one transaction, each
//! inside its own savepoint, so one failing job undoes only its own work. Callers are answered
//! after the COMMIT. Under load this turns many small commits into one, which is most of the
//! cost of a small write.
//!
//! Each reader keeps the results of cacheable statements (counts) until `PRAGMA data_version`
//! says that another connection committed a change, whichever process it was: a count over a
//! large table is then paid once per change instead of once per page.
//!
//! WAL checkpoints (copying the log back into the database file) run on a thread of their
//! own, not inside a writer's commit as SQLite's automatic checkpoint would: a checkpoint takes
//! milliseconds, and every write queued behind it would wait that long.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql, ffi};
use tokio::sync::oneshot;

use super::{DbError, Rows, Stmt, Value};

type ReadJob = Box<dyn FnOnce(&mut Reader) + Send>;

/// A reader thread's connection and its cache of results.
struct Reader {
    conn: Connection,
    cache: ResultCache,
}

/// Results of cacheable statements, valid while `data_version` stays the same.
#[derive(Default)]
struct ResultCache {
    data_version: i64,
    results: std::collections::HashMap<String, Rows>,
}

/// The most results one reader keeps; the cache is emptied when it is full.
const CACHE_ENTRIES: usize = 4096;

impl Reader {
    fn run(&mut self, stmt: &Stmt) -> Result<Rows, DbError> {
        if !stmt.cacheable {
            return run_stmt(&self.conn, stmt);
        }
        // Cached: parsing the pragma again on every counted page showed in profiles.
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .map_err(map_err)?;
        if version != self.cache.data_version || self.cache.results.len() >= CACHE_ENTRIES {
            self.cache.results.clear();
            self.cache.data_version = version;
        }
        let key = format!("{}\u{0}{:?}", stmt.sql, stmt.params);
        if let Some(rows) = self.cache.results.get(&key) {
            return Ok(rows.clone());
        }
        let rows = run_stmt(&self.conn, stmt)?;
        self.cache.results.insert(key, rows.clone());
        Ok(rows)
    }
}

/// The most jobs one group commit takes.
const MAX_GROUP: usize = 256;

/// Writing work queued for the writer thread.
trait WriteJob: Send {
    /// Runs the work inside the writer's transaction; answers whether it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller: the work's own result, or `failure` when the transaction did not
    /// commit.
    fn finish(self: Box<Self>, failure: Option<DbError>);
}

struct Job<R, E, F> {
    work: Option<F>,
    result: Option<Result<R, E>>,
    reply: oneshot::Sender<Result<R, E>>,
}

impl<R: Send, E: From<DbError> + Send, F: FnOnce(&Connection) -> Result<R, E> + Send> WriteJob for Job<R, E, F> {
    fn run(&mut self, conn: &Connection) -> bool {
        let result =
            self.work.take().map_or_else(|| Err(DbError::Other("a write job ran twice".into()).into()), |w| w(conn));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, failure: Option<DbError>) {
        let result = match failure {
            Some(err) => Err(err.into()),
            None => self.result.unwrap_or_else(|| Err(DbError::Other("a write job did not run".into()).into())),
        };
        let _ = self.reply.send(result);
    }
}

#[derive(Clone)]
pub struct SqlitePool {
    inner: Arc<Channels>,
}

struct Channels {
    readers: Sender<ReadJob>,
    writer: Sender<Box<dyn WriteJob>>,
    reader_count: usize,
}

impl SqlitePool {
    pub fn open(path: &Path, readers: usize, sync: Synchronous) -> Result<Self, DbError> {
        // A new database is made private first: SQLite would make it readable by all, and its
        // journal files take its mode.
        if let Err(err) = crate::util::create_private(path)
            && err.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(DbError::Other(format!("{}: {err}", path.display())));
        }
        // The writer opens first: it switches the file to WAL mode.
        let writer_conn = open_connection(path, Some(sync))?;
        let (writer_tx, writer_rx) = crossbeam_channel::unbounded::<Box<dyn WriteJob>>();
        let (commits_tx, commits_rx) = crossbeam_channel::bounded::<()>(1);
        spawn_thread("ferrobase-sqlite-writer".into(), move || write_loop(&writer_conn, &writer_rx, &commits_tx));
        let checkpoint_conn = open_connection(path, Some(sync))?;
        // It only copies pages from the log to the file: no need for a large cache.
        checkpoint_conn.execute_batch("PRAGMA cache_size = -1000").map_err(map_err)?;
        spawn_thread("ferrobase-sqlite-checkpoint".into(), move || checkpoint_loop(&checkpoint_conn, &commits_rx));

        let (readers_tx, readers_rx) = crossbeam_channel::unbounded::<ReadJob>();
        for i in 0..readers.max(1) {
            let mut reader = Reader { conn: open_connection(path, None)?, cache: ResultCache::default() };
            let jobs = readers_rx.clone();
            spawn_thread(format!("ferrobase-sqlite-reader-{i}"), move || {
                // Ends when every sender is gone, i.e. when the pool is dropped.
                while let Ok(job) = jobs.recv() {
                    job(&mut reader);
                }
            });
        }
        let reader_count = readers.max(1);
        Ok(SqlitePool { inner: Arc::new(Channels { readers: readers_tx, writer: writer_tx, reader_count }) })
    }

    pub async fn read_many(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, DbError> {
        let (tx, rx) = oneshot::channel();
        let queued = std::time::Instant::now();
        let job: ReadJob = Box::new(move |reader| {
            metrics::histogram!("ferrobase_db_pool_wait_seconds").record(queued.elapsed().as_secs_f64());
            let _ = tx.send(stmts.iter().map(|s| reader.run(s)).collect());
        });
        self.inner.readers.send(job).map_err(|_| shut_down())?;
        rx.await.map_err(|_| DbError::Other("an SQLite reader stopped".into()))?
    }

    /// A consistent copy of the database at `path` (`VACUUM INTO`), made on a reader: it reads
    /// one snapshot while the writer goes on writing.
    pub async fn vacuum_into(&self, path: &Path) -> Result<(), DbError> {
        let (tx, rx) = oneshot::channel();
        let target = path.to_string_lossy().into_owned();
        let job: ReadJob = Box::new(move |reader| {
            // Readers are query-only; VACUUM INTO only reads this database, but SQLite asks
            // for a connection that may write (the new file), so the flag is lifted meanwhile.
            let conn = &reader.conn;
            let result = conn
                .execute_batch("PRAGMA query_only = OFF")
                .and_then(|()| conn.execute("VACUUM INTO ?1", [target]).map(|_| ()));
            let restored = conn.execute_batch("PRAGMA query_only = ON");
            let _ = tx.send(result.and(restored).map_err(map_err));
        });
        self.inner.readers.send(job).map_err(|_| shut_down())?;
        rx.await.map_err(|_| DbError::Other("an SQLite reader stopped".into()))?
    }

    /// The connections: (readers and the writer, jobs queued for a reader, jobs queued for the
    /// writer).
    pub fn connections(&self) -> (usize, usize, usize) {
        (self.inner.reader_count + 1, self.inner.readers.len(), self.inner.writer.len())
    }

    /// Runs the statements as one unit: the writer's savepoint around the job makes them
    /// all-or-nothing.
    pub async fn write_many(&self, stmts: Vec<Stmt>) -> Result<Vec<Rows>, DbError> {
        self.write(move |conn| {
            stmts
                .iter()
                .enumerate()
                .map(|(index, s)| {
                    run_stmt(conn, s)
                        .and_then(|rows| s.check_changed(rows))
                        .map_err(|e| DbError::InStatement { index, source: Box::new(e) })
                })
                .collect()
        })
        .await
    }

    pub async fn execute_script(&self, script: String) -> Result<(), DbError> {
        self.write(move |conn| conn.execute_batch(&script).map_err(map_err)).await
    }

    /// Runs `work` on the writer's connection, inside the group transaction and a savepoint
    /// of its own: an error undoes all it did. Answers after the commit.
    pub(super) async fn write<R: Send + 'static, E: From<DbError> + Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E> {
        let (tx, rx) = oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job { work: Some(work), result: None, reply: tx });
        self.inner.writer.send(job).map_err(|_| shut_down())?;
        rx.await.map_err(|_| DbError::Other("the SQLite writer stopped".into()))?
    }
}

fn shut_down() -> DbError {
    DbError::Other("the SQLite store is shut down".into())
}

fn spawn_thread(name: String, body: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().name(name).spawn(body).expect("an SQLite worker thread starts");
}

/// The writer thread: takes every job waiting, runs them in one transaction, answers after
/// the commit. Ends when the pool is dropped.
fn write_loop(conn: &Connection, jobs: &Receiver<Box<dyn WriteJob>>, commits: &Sender<()>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let failure = run_group(conn, &mut group).err();
        for job in group {
            job.finish(failure.as_ref().map(|e| match e {
                // Another program's lock: the client may try again, as for any busy server.
                DbError::Busy(msg) => DbError::Busy(msg.clone()),
                other => DbError::Other(other.to_string()),
            }));
        }
        // Tell the checkpointer there is log to copy back (a full channel already says so).
        let _ = commits.try_send(());
    }
}

/// The size the write-ahead log is cut back to once checkpointed: a burst of writes (or a long
/// read that held checkpoints back) grows it, and without a limit it would keep that size.
const WAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// How often, at most, the log is checkpointed while writes come in.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(20);

/// Copies the WAL back into the database after writes, without blocking the writer (PASSIVE).
/// Ends when the writer does.
fn checkpoint_loop(conn: &Connection, commits: &Receiver<()>) {
    while commits.recv().is_ok() {
        if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%err, "WAL checkpoint failed");
        }
        // Coalesce the commits of the next moments into one checkpoint.
        std::thread::sleep(CHECKPOINT_INTERVAL);
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

fn run_group(conn: &Connection, group: &mut [Box<dyn WriteJob>]) -> Result<(), DbError> {
    exec_cached(conn, "BEGIN IMMEDIATE")?;
    for job in group.iter_mut() {
        exec_cached(conn, "SAVEPOINT fb_job")?;
        let ok = job.run(conn);
        if conn.is_autocommit() {
            // A fatal error rolled the whole transaction back, earlier jobs' work included.
            return Err(DbError::Other("the write was rolled back by the database; try again".into()));
        }
        if !ok {
            exec_cached(conn, "ROLLBACK TO fb_job")?;
        }
        exec_cached(conn, "RELEASE fb_job")?;
    }
    if let Err(err) = exec_cached(conn, "COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(err);
    }
    Ok(())
}

fn exec_cached(conn: &Connection, sql: &str) -> Result<(), DbError> {
    conn.prepare_cached(sql).and_then(|mut stmt| stmt.execute([])).map(|_| ()).map_err(|e| {
        if !conn.is_autocommit() && sql.starts_with("BEGIN") {
            let _ = conn.execute_batch("ROLLBACK");
        }
        map_err(e)
    })
}

/// How SQLite makes a commit durable (`PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// The WAL is synced at checkpoints, not at each commit: a crash of the process loses no
    /// acknowledged commit; a power loss or OS crash may lose the last ones (never corrupts).
    #[default]
    Normal,
    /// The WAL is synced at every commit: acknowledged commits survive a power loss too, at
    /// the price of one fsync per commit group.
    Full,
}

/// A connection; `sync` is `None` for a read-only one.
fn open_connection(path: &Path, sync: Option<Synchronous>) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(256);
    // Plans that never look at the values bound. Otherwise SQLite marks parameters whose value
    // could change the plan (an `x = ?` the plan filters on, a `LIMIT ?`) and prepares the
    // statement again when they are bound; a cached statement's bindings are cleared after
    // each use, which counts as a change, so most list queries were parsed and planned anew
    // on every run. The price: a bound `LIKE` pattern no longer turns into an index range.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(map_err)?;
    // A double-quoted name that names no column is an error, as in PostgreSQL. SQLite's
    // default reads it as a string: a filter on a column dropped meanwhile (`"f" = 'f'`) was
    // true for every row, and a delete with it emptied the table.
    for dqs in
        [rusqlite::config::DbConfig::SQLITE_DBCONFIG_DQS_DML, rusqlite::config::DbConfig::SQLITE_DBCONFIG_DQS_DDL]
    {
        conn.set_db_config(dqs, false).map_err(map_err)?;
    }
    // case_sensitive_like: LIKE behaves as on PostgreSQL; ILIKE is compiled separately.
    // Page caches: 16 MB per connection (a reader that misses copies the page in from the
    // kernel again): 48 MB at most with the default two readers.
    let mut pragmas = String::from(
        "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON; \
         PRAGMA temp_store = MEMORY;",
    );
    match sync {
        None => pragmas.push_str(" PRAGMA query_only = ON; PRAGMA cache_size = -16000;"),
        Some(sync) => {
            let level = if sync == Synchronous::Full { "FULL" } else { "NORMAL" };
            pragmas.push_str(&format!(
                " PRAGMA journal_mode = WAL; PRAGMA synchronous = {level}; PRAGMA cache_size = -16000; \
                 PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES};"
            ));
        }
    }
    conn.execute_batch(&pragmas).map_err(map_err)?;
    add_functions(&conn)?;
    Ok(conn)
}

/// The SQL function `ilike` and `contains` compare through: `fb_fold(text)` is the text in
/// lower case by Unicode's rules (SQLite's own `LOWER` folds ASCII letters only, so `É` did
/// not match `é` as it does with PostgreSQL's `ILIKE`). Anything but text passes unchanged.
pub const FOLD_FUNCTION: &str = "fb_fold";

/// The SQL aggregate integer sums use: `fb_exact_sum(x)` adds in 128 bits, so that only a
/// total past 64 bits is refused (SQLite's `SUM` refuses a running total that passes it on the
/// way, where PostgreSQL, adding in `numeric`, answers the true total).
pub const EXACT_SUM_FUNCTION: &str = "fb_exact_sum";

struct ExactSum;

impl rusqlite::functions::Aggregate<Option<i128>, Option<i64>> for ExactSum {
    fn init(&self, _: &mut rusqlite::functions::Context<'_>) -> rusqlite::Result<Option<i128>> {
        Ok(None)
    }

    fn step(&self, ctx: &mut rusqlite::functions::Context<'_>, total: &mut Option<i128>) -> rusqlite::Result<()> {
        use rusqlite::types::ValueRef;
        // An integer field holds integers (writes are typed); a real put there by another
        // program counts by its integral part, as a cast would.
        let addend = match ctx.get_raw(0) {
            ValueRef::Integer(i) => i128::from(i),
            ValueRef::Real(r) if r.is_finite() && r.abs() < 1e30 => r.trunc() as i128,
            _ => return Ok(()),
        };
        *total = Some(total.unwrap_or(0) + addend);
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut rusqlite::functions::Context<'_>,
        total: Option<Option<i128>>,
    ) -> rusqlite::Result<Option<i64>> {
        // No rows, or only nulls: null, as SUM answers.
        total
            .flatten()
            .map(|t| i64::try_from(t).map_err(|_| rusqlite::Error::UserFunctionError("integer overflow".into())))
            .transpose()
    }
}

/// Text in lower case by Unicode's rules, as PostgreSQL's `lower` gives it: the capital
/// dotted I (`İ`) becomes a plain `i`, where Rust's rules add a combining dot after it (which
/// would keep `İstanbul` from matching `istanbul`).
fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\u{130}' => folded.push('i'),
            other => folded.extend(other.to_lowercase()),
        }
    }
    folded
}

fn add_functions(conn: &Connection) -> Result<(), DbError> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::{Value as SqlValue, ValueRef};
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function(FOLD_FUNCTION, 1, flags, |ctx| match ctx.get_raw(0) {
        ValueRef::Text(bytes) => Ok(SqlValue::Text(fold(&String::from_utf8_lossy(bytes)))),
        _ => ctx.get::<SqlValue>(0),
    })
    .map_err(map_err)?;
    conn.create_aggregate_function(EXACT_SUM_FUNCTION, 1, flags, ExactSum).map_err(map_err)
}

pub(super) fn run_stmt(conn: &Connection, stmt: &Stmt) -> Result<Rows, DbError> {
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
        // In PostgreSQL's hex form, as `bytea` is answered there.
        ValueRef::Blob(b) => Value::Text(super::text_formats::hex_form(b)),
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
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// SQLite's "NOT NULL constraint failed: table.column" in PostgreSQL's words, which is what
/// PostgREST clients read, so that both backends answer alike.
fn not_null_message(msg: String) -> String {
    match msg.strip_prefix("NOT NULL constraint failed: ").and_then(|names| names.split_once('.')) {
        Some((table, column)) => {
            format!("null value in column \"{column}\" of relation \"{table}\" violates not-null constraint")
        }
        None => msg,
    }
}

/// SQLite's error → a classified [`DbError`]. The message never carries the statement
/// (rusqlite's `SqlInputError` would print it whole): errors are logged, and a statement holds
/// the request's structure.
fn map_err(err: rusqlite::Error) -> DbError {
    let failure = match &err {
        rusqlite::Error::SqliteFailure(ffi_err, msg) => Some((ffi_err, msg.clone())),
        rusqlite::Error::SqlInputError { error, msg, .. } => Some((error, Some(msg.clone()))),
        _ => None,
    };
    if let Some((ffi_err, msg)) = failure {
        let msg = msg.unwrap_or_else(|| ffi_err.to_string());
        return match ffi_err.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                DbError::UniqueViolation(unique_message(&msg))
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => DbError::ForeignKeyViolation(msg),
            ffi::SQLITE_CONSTRAINT_NOTNULL => DbError::NotNullViolation(not_null_message(msg)),
            ffi::SQLITE_CONSTRAINT_CHECK => DbError::CheckViolation(msg),
            // A trigger's RAISE(ABORT, …) (tables made with plain SQL): its message is for the client.
            ffi::SQLITE_CONSTRAINT_TRIGGER => DbError::InvalidValue(msg),
            _ if matches!(ffi_err.code, ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked) => {
                DbError::Busy(msg)
            }
            // Only an INTEGER PRIMARY KEY (the rowid) refuses a value of another type.
            ffi::SQLITE_MISMATCH => DbError::InvalidValue(
                "a value does not fit its column: an integer primary key takes integers only, never null or text"
                    .into(),
            ),
            // An upsert naming columns without a unique constraint.
            _ if msg.contains("ON CONFLICT clause does not match") => {
                DbError::NoConflictTarget(super::NO_CONFLICT_TARGET.into())
            }
            // A table, column or index dropped or made by another request meanwhile.
            _ if ["no such table:", "no such column:", "no such index:"].iter().any(|p| msg.starts_with(p))
                || msg.contains("has no column named")
                || (msg.starts_with("error in trigger") && msg.contains("no such column"))
                || (msg.starts_with("index ") && msg.ends_with("already exists")) =>
            {
                DbError::SchemaChanged(msg)
            }
            // SUM past the 64-bit range: the data's doing, not the server's.
            _ if msg == "integer overflow" => DbError::InvalidValue(super::INTEGER_OVERFLOW.into()),
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

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    #[test]
    fn text_folds_as_postgresql_lowers_it() {
        assert_eq!(super::fold("İstanbul ÉCOLE Ωmega"), "istanbul école ωmega");
        assert_eq!(super::fold("straße"), "straße");
    }

    /// How often a cached statement was prepared again over runs that bind new values.
    fn reprepares(sql: &str) -> i32 {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::open_connection(&dir.path().join("t.db"), Some(super::Synchronous::Normal)).unwrap();
        conn.execute_batch(
            "CREATE TABLE f (id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, UNIQUE (bucket, key)); \
             INSERT INTO f VALUES ('1', 'a', 'k1'), ('2', 'a', 'k2'), ('3', 'b', 'k3');",
        )
        .unwrap();
        for (bucket, limit) in [("a", 1), ("b", 5), ("a", 0), ("a", 2)] {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let rows = stmt.query_map(rusqlite::params![bucket, limit], |row| row.get::<_, String>(0)).unwrap();
            assert!(rows.count() <= 2);
        }
        conn.prepare_cached(sql).unwrap().get_status(StatementStatus::RePrepare)
    }

    #[test]
    fn cached_list_statements_keep_their_plan() {
        // Without the planner's stability guarantee, both were prepared again on every run.
        assert_eq!(reprepares("SELECT id FROM f WHERE bucket = ? ORDER BY key LIMIT ?"), 0);
        assert_eq!(reprepares("SELECT id FROM f WHERE bucket = ? AND key >= 'k' ORDER BY key LIMIT ? OFFSET 0"), 0);
    }
}
