//! The PostgreSQL store: a deadpool of tokio-postgres connections with cached prepared
//! statements.

use std::error::Error as StdError;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Row};

use super::{DbError, Rows, Stmt, Value};

/// Every prepared statement keeps one plan, whatever its bound values: as SQLite does with its
/// query planner stability guarantee. PostgreSQL otherwise plans many statements again on
/// every run (a bucket listing by key range was planned 8 times in 8 runs, and planning cost
/// about as much as running it). A `LIKE ?` then never becomes an index range, on either backend.
const GENERIC_PLANS: &str = "-c plan_cache_mode=force_generic_plan";

#[derive(Clone)]
pub struct PgPool {
    pool: Pool,
}

/// How long opening a connection may take before the database counts as unreachable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a request waits for a free connection before it is answered 503.
const POOL_WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// How long a connection may stay silent before it is probed, and how long probes or sent
/// bytes may go unanswered before it counts as lost: a database host that vanished (a network
/// partition, a crash of its machine) sends no reset, so without them a query in flight would
/// wait for hours, the system's default, holding its request and its pooled connection.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(10);
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;
const UNANSWERED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Lets the kernel find a connection whose peer is gone: the query on it then fails (503) and
/// the pool drops it, instead of waiting for the database for ever.
pub(super) fn detect_lost_connections(config: &mut tokio_postgres::Config) {
    config
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES)
        .tcp_user_timeout(UNANSWERED_TIMEOUT);
}

impl PgPool {
    pub async fn connect(url: &str, size: usize) -> Result<Self, DbError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| DbError::Other(format!("invalid DATABASE_URL: {e}")))?;
        let options = match config.get_options() {
            Some(given) => format!("{given} {GENERIC_PLANS}"),
            None => GENERIC_PLANS.to_owned(),
        };
        config.options(&options);
        detect_lost_connections(&mut config);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .build()
            .map_err(|e| DbError::Other(format!("PostgreSQL pool: {e}")))?;
        let pg = PgPool { pool };
        // Fail at start-up, not on the first request, when the database is unreachable.
        drop(pg.client().await?);
        Ok(pg)
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        let started = std::time::Instant::now();
        let client = self.pool.get().await.map_err(|e| DbError::Unreachable(format!("PostgreSQL connection: {e}")));
        metrics::histogram!("ferrobase_db_pool_wait_seconds").record(started.elapsed().as_secs_f64());
        if let Ok(client) = &client
            && client.statement_cache.size() > MAX_PREPARED_PER_CONNECTION
        {
            // Dropping the cached statements closes them on the server too.
            client.statement_cache.clear();
        }
        client
    }

    /// The pool's connections: (in all, idle, callers waiting for one).
    pub fn connections(&self) -> (usize, usize, usize) {
        let status = self.pool.status();
        (status.size, status.available, status.waiting)
    }

    /// Runs the statements on one connection, inside a transaction when `atomic`.
    ///
    /// Prepared statements are cached per connection, and a cached plan goes stale when a
    /// table changes shape (a field added, dropped or re-typed, here or by another instance):
    /// PostgreSQL then refuses it, and the run is tried once more with every cache emptied
    /// (nothing of the first try was committed). A schema change made here empties the
    /// caches at once, so statements of the new shape are prepared afresh. A transaction that
    /// lost to a concurrent one (a deadlock) is tried again, up to [`CONTENDED_TRIES`] times.
    pub async fn run_many(&self, stmts: Vec<Stmt>, atomic: bool) -> Result<Vec<Rows>, DbError> {
        let mut tries = 1;
        let result = loop {
            match self.run_once(&stmts, atomic).await {
                Err(err) if err.is_stale_plan() && tries == 1 => self.pool.manager().statement_caches.clear(),
                Err(err) if err.is_contended() && atomic && tries < CONTENDED_TRIES => {}
                other => break other,
            }
            tries += 1;
        };
        if result.is_ok() && stmts.iter().any(|s| changes_schema(&s.sql)) {
            self.pool.manager().statement_caches.clear();
        }
        result
    }

    async fn run_once(&self, stmts: &[Stmt], atomic: bool) -> Result<Vec<Rows>, DbError> {
        let mut client = self.client().await?;
        if atomic && stmts.len() > 1 {
            let tx = client.transaction().await.map_err(map_err)?;
            let mut out = Vec::with_capacity(stmts.len());
            for (index, stmt) in stmts.iter().enumerate() {
                let rows = run_stmt(&tx, stmt).await.and_then(|rows| stmt.check_changed(rows));
                out.push(rows.map_err(|e| DbError::InStatement { index, source: Box::new(e) })?);
            }
            tx.commit().await.map_err(map_err)?;
            return Ok(out);
        }
        let mut out = Vec::with_capacity(stmts.len());
        for (index, stmt) in stmts.iter().enumerate() {
            let rows = run_stmt(&client, stmt).await.and_then(|rows| stmt.check_changed(rows));
            out.push(rows.map_err(|e| if atomic { DbError::InStatement { index, source: Box::new(e) } } else { e })?);
        }
        Ok(out)
    }

    /// Empties every connection's cache of prepared statements (after a schema change).
    pub(super) fn forget_statements(&self) {
        self.pool.manager().statement_caches.clear();
    }

    pub async fn execute_script(&self, script: &str) -> Result<(), DbError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx.batch_execute(script).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.pool.manager().statement_caches.clear();
        Ok(())
    }
}

/// The most prepared statements one connection keeps. Each filter's shape (which columns,
/// which operators, how many `in` values) is a statement of its own, and PostgreSQL keeps each
/// prepared statement's plan in the connection's memory: without a bound, anonymous reads with
/// ever new shapes would grow every connection without end. Past it the cache starts afresh;
/// an application's own shapes are far fewer.
pub(super) const MAX_PREPARED_PER_CONNECTION: usize = 256;

/// How many times a transaction that lost to concurrent ones (a deadlock, which PostgreSQL
/// finds after `deadlock_timeout`, 1 s by default) is tried in all.
pub(super) const CONTENDED_TRIES: u32 = 4;

/// Whether a statement changes the shape of a table (so cached plans over it go stale).
pub(super) fn changes_schema(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or("");
    ["ALTER ", "CREATE", "DROP T"].iter().any(|p| head.eq_ignore_ascii_case(p))
}

pub(super) async fn run_stmt(client: &impl deadpool_postgres::GenericClient, stmt: &Stmt) -> Result<Rows, DbError> {
    let prepared = client.prepare_cached(&stmt.sql).await.map_err(map_err)?;
    let params: Vec<&(dyn ToSql + Sync)> = stmt.params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    if prepared.columns().is_empty() {
        let affected = client.execute(&prepared, &params).await.map_err(map_err)?;
        return Ok(Rows { columns: Vec::new(), rows: Vec::new(), affected });
    }
    let result = client.query(&prepared, &params).await.map_err(map_err)?;
    let columns: Vec<String> = prepared.columns().iter().map(|c| c.name().to_owned()).collect();
    let rows = result.iter().map(decode_row).collect::<Result<Vec<_>, _>>()?;
    let affected = if stmt.sql.trim_start().starts_with("SELECT") { 0 } else { rows.len() as u64 };
    Ok(Rows { columns, rows, affected })
}

fn decode_row(row: &Row) -> Result<Vec<Value>, DbError> {
    (0..row.len())
        .map(|i| row.try_get::<_, Value>(i).map_err(|e| DbError::Other(format!("decoding column {i}: {e}"))))
        .collect()
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(match *ty {
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            // Through its shortest decimal form: `real` 0.1 is read as 0.1, as PostgreSQL
            // prints it, not widened to 0.10000000149011612.
            Type::FLOAT4 => Value::Real(widened(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::JSON | Type::JSONB => Value::Json(serde_json::Value::from_sql(ty, raw)?),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::BOOL
                | Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::OID
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::JSON
                | Type::JSONB
        ) || <String as FromSql>::accepts(ty)
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i).map_err(|_| OutOfRange::of(i, "smallint"))?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i).map_err(|_| OutOfRange::of(i, "integer"))?.to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::JSON | Type::JSONB => serde_json::Value::from(*i).to_sql(ty, out),
                _ if is_text(ty) => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Real(f) => match *ty {
                // `as` would make a number past f32's range an infinity.
                Type::FLOAT4 if f.is_finite() && f.abs() > f64::from(f32::MAX) => Err(OutOfRange::of(f, "real").into()),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::JSON | Type::JSONB => serde_json::json!(f).to_sql(ty, out),
                _ if is_text(ty) => f.to_string().to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            Value::Text(s) => match *ty {
                Type::JSON | Type::JSONB => serde_json::Value::from(s.as_str()).to_sql(ty, out),
                _ => s.as_str().to_sql(ty, out),
            },
            Value::Json(v) => match *ty {
                _ if is_text(ty) => v.to_string().to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Bytes(b) => match *ty {
                _ if is_text(ty) => super::text_formats::hex_form(b).to_sql(ty, out),
                _ => b.as_slice().to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        // Conversion is decided per value in `to_sql`; a mismatch is reported there.
        true
    }

    to_sql_checked!();
}

/// A `real` as the number its shortest decimal form names.
fn widened(value: f32) -> f64 {
    if !value.is_finite() {
        return value.into();
    }
    value.to_string().parse().unwrap_or(value.into())
}

/// A bound value past the range of its column's type, refused before it is sent, in
/// PostgreSQL's words for the same refusal.
#[derive(Debug)]
struct OutOfRange(String);

impl OutOfRange {
    fn of(value: &dyn std::fmt::Display, type_name: &str) -> OutOfRange {
        OutOfRange(format!("value \"{value}\" is out of range for type {type_name}"))
    }
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for OutOfRange {}

fn is_text(ty: &Type) -> bool {
    matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN)
        || matches!(ty.kind(), Kind::Domain(inner) if is_text(inner))
}

fn map_err(err: tokio_postgres::Error) -> DbError {
    let Some(db) = err.as_db_error() else {
        if let Some(out_of_range) = err.source().and_then(|e| e.downcast_ref::<OutOfRange>()) {
            return DbError::OutOfRange(out_of_range.0.clone());
        }
        // A parameter that could not be converted for its column is the client's mistake.
        if err.to_string().contains("error serializing parameter") {
            return DbError::InvalidValue(format!("a value does not fit its column: {}", source_text(&err)));
        }
        // The connection broke (the server restarted, the network failed).
        if err.is_closed() || std::error::Error::source(&err).is_some_and(|e| e.is::<std::io::Error>()) {
            return DbError::Unreachable(err.to_string());
        }
        return DbError::Other(err.to_string());
    };
    let message = match db.detail() {
        Some(detail) => format!("{}: {detail}", db.message()),
        None => db.message().to_owned(),
    };
    let code = db.code();
    if (*code == SqlState::FEATURE_NOT_SUPPORTED && message.contains("cached plan"))
        // A cached statement whose parameters' types another program changed: the values,
        // sent in the binary form of the old type, no longer decode.
        || [SqlState::INVALID_BINARY_REPRESENTATION, SqlState::PROTOCOL_VIOLATION].contains(code)
    {
        DbError::StalePlan(message)
    } else if code.code().starts_with("08")
        || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(code)
    {
        // Connection exceptions, and a server shutting down or starting up.
        DbError::Unreachable(message)
    } else if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE {
        DbError::Contended(message)
    } else if [
        SqlState::UNDEFINED_TABLE,
        SqlState::UNDEFINED_COLUMN,
        SqlState::UNDEFINED_OBJECT,
        SqlState::DUPLICATE_TABLE,
        // A column dropped while another request built the search index over it.
        SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
        // A column whose type another program changed: the statement, built for the type
        // the catalog knew, applies an operator the new type does not have.
        SqlState::UNDEFINED_FUNCTION,
    ]
    .contains(code)
    {
        DbError::SchemaChanged(message)
    } else if *code == SqlState::UNIQUE_VIOLATION {
        DbError::UniqueViolation(unique_message(db.detail().unwrap_or("")).unwrap_or(message))
    } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
        // The detail names the key's values; the answer names only its columns.
        DbError::ForeignKeyViolation(
            foreign_key_message(db.detail().unwrap_or("")).unwrap_or_else(|| db.message().to_owned()),
        )
    } else if *code == SqlState::NOT_NULL_VIOLATION {
        // The detail ("Failing row contains (…)") would echo the whole row, defaults included.
        DbError::NotNullViolation(db.message().to_owned())
    } else if *code == SqlState::CHECK_VIOLATION {
        DbError::CheckViolation(db.message().to_owned())
    } else if *code == SqlState::INVALID_COLUMN_REFERENCE && message.contains("ON CONFLICT") {
        // An upsert naming columns without a unique constraint.
        DbError::NoConflictTarget(super::NO_CONFLICT_TARGET.into())
    } else if *code == SqlState::PROGRAM_LIMIT_EXCEEDED {
        // A value too large for one of PostgreSQL's own limits: an index entry (about 2.7 KB
        // of text in a btree), a search index's tsvector (1 MB).
        DbError::InvalidValue(format!("a value is too large for PostgreSQL: {message}"))
    } else if *code == SqlState::RAISE_EXCEPTION {
        // A trigger's RAISE EXCEPTION (tables made with plain SQL): its message is for the client.
        DbError::InvalidValue(message)
    } else if [SqlState::SYNTAX_ERROR, SqlState::INVALID_NAME].contains(code) && db.position().is_none() {
        // A value that its column's type parses itself and found malformed (a `tsquery`, a
        // `tsvector`, a `regclass`). A syntax error in a statement always carries its position.
        DbError::InvalidValue(message)
    } else if [SqlState::INVALID_DATETIME_FORMAT, SqlState::DATETIME_FIELD_OVERFLOW].contains(code) {
        DbError::InvalidDatetime(message)
    } else if *code == SqlState::NUMERIC_VALUE_OUT_OF_RANGE && message == "bigint out of range" {
        // Integer arithmetic past 64 bits (a sum): said as SQLite's overflow is.
        DbError::InvalidValue(super::INTEGER_OVERFLOW.into())
    } else if *code == SqlState::NUMERIC_VALUE_OUT_OF_RANGE {
        DbError::OutOfRange(message)
    } else if [
        SqlState::INVALID_TEXT_REPRESENTATION,
        SqlState::DATATYPE_MISMATCH,
        SqlState::INVALID_PARAMETER_VALUE,
        SqlState::STRING_DATA_RIGHT_TRUNCATION,
    ]
    .contains(code)
        // Class 22, data exceptions: a value the column's type cannot take (a bad date, a
        // malformed uuid or array literal, an overflow).
        || code.code().starts_with("22")
    {
        DbError::InvalidValue(message)
    } else {
        DbError::Other(format!("{message} ({})", code.code()))
    }
}

fn source_text(err: &tokio_postgres::Error) -> String {
    err.source().map_or_else(|| err.to_string(), ToString::to_string)
}

/// `Key (author_id)=(9) is not present in table "authors".` → "author_id must name an
/// existing row of authors"; `Key (id)=(1) is still referenced from table "books".` → "the
/// row is still referenced from books". The values are left out: they may be another's data.
fn foreign_key_message(detail: &str) -> Option<String> {
    let cols = detail.strip_prefix("Key (")?.split(")=").next()?;
    let table = |marker: &str| Some(detail.split(marker).nth(1)?.trim_end_matches('.').trim_matches('"').to_owned());
    if detail.contains(" is not present in table ") {
        Some(format!("{cols} must name an existing row of {}", table(" is not present in table ")?))
    } else if detail.contains(" is still referenced from table ") {
        // As SQLite's refusal is named (`Store::name_referencing_keys`), which cannot
        // tell the key.
        Some(format!("the row is still referenced from {}", table(" is still referenced from table ")?))
    } else {
        None
    }
}

/// "Key (slug)=(x) already exists." → "a record with this slug already exists".
fn unique_message(detail: &str) -> Option<String> {
    let cols = detail.strip_prefix("Key (")?.split(")=").next()?;
    Some(format!("a record with this {cols} already exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_key_messages_name_columns_never_values() {
        let missing = foreign_key_message(r#"Key (author_id)=(secret 999) is not present in table "authors"."#);
        assert_eq!(missing.as_deref(), Some("author_id must name an existing row of authors"));
        let used = foreign_key_message(r#"Key (id)=(42) is still referenced from table "books"."#);
        assert_eq!(used.as_deref(), Some("the row is still referenced from books"));
        assert_eq!(foreign_key_message("something else"), None);
    }

    /// The test database, or `None` outside CI when it is not configured.
    fn test_url() -> Option<String> {
        match std::env::var("FERROBASE_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var_os("CI").is_some() => panic!("CI is set but FERROBASE_TEST_DATABASE_URL is not"),
            _ => None,
        }
    }

    #[tokio::test]
    async fn statements_keep_one_plan_and_the_urls_own_options_stay() {
        let Some(url) = test_url() else { return };
        let sep = if url.contains('?') { '&' } else { '?' };
        let pool = PgPool::connect(&format!("{url}{sep}options=-cstatement_timeout%3D4321"), 1).await.unwrap();
        let settings = "SELECT current_setting('plan_cache_mode'), current_setting('statement_timeout')";
        let rows = pool.run_many(vec![Stmt::new(settings, vec![])], false).await.unwrap();
        assert_eq!(rows[0].rows[0], vec![Value::Text("force_generic_plan".into()), Value::Text("4321ms".into())]);
        // Left to itself, PostgreSQL plans a statement with parameters again on each of its first
        // five runs, and on every later one where a plan for the values looks cheaper.
        let ranged =
            "SELECT relname::text FROM pg_class WHERE relname::text >= $1 AND relname::text < $2 ORDER BY 1 LIMIT $3";
        for prefix in ["pg_a", "pg_c", "pg_t"] {
            let params = vec![prefix.into(), format!("{prefix}\u{10FFFF}").into(), Value::Int(5)];
            pool.run_many(vec![Stmt::new(ranged, params)], false).await.unwrap();
        }
        let plans = "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1";
        let rows = pool.run_many(vec![Stmt::new(plans, vec![ranged.into()])], false).await.unwrap();
        assert_eq!(rows[0].rows, vec![vec![Value::Int(3), Value::Int(0)]]);
    }
}
