//! Write transactions whose statements are decided one after another (read the record, then
//! change the schema, then write): what the write pipeline runs in. [`Tx`] is one interface
//! over both backends:
//!
//! - SQLite: the work runs on the writer thread, inside the group commit and a savepoint of
//!   its own. Its statements complete at once, so the work's future is polled to completion
//!   right there, with no runtime and no waiting.
//! - PostgreSQL: the work runs on one pooled connection inside `BEGIN … COMMIT`.
//!
//! Either way an error rolls back everything the work did, schema changes included.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::{Db, DbError, Dialect, Rows, Stmt};
use crate::error::ApiError;

/// A transaction in progress.
pub trait Tx: Send {
    fn dialect(&self) -> Dialect;

    /// Runs one statement (failing when it is `must_change` and changed nothing).
    fn run(&mut self, stmt: &Stmt) -> impl Future<Output = Result<Rows, DbError>>;
}

/// What runs inside a transaction: the work and its answer. It may run twice (PostgreSQL
/// retries a transaction whose cached statements went stale under a schema change).
pub trait TxWork: Send + Sync + 'static {
    type Output: Send + 'static;

    fn run<T: Tx>(&self, tx: &mut T) -> impl Future<Output = Result<Self::Output, ApiError>>;
}

struct SqliteTx<'c> {
    conn: &'c rusqlite::Connection,
}

// The connection lives on the writer thread and the transaction never leaves it.
unsafe impl Send for SqliteTx<'_> {}

impl Tx for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn run(&mut self, stmt: &Stmt) -> impl Future<Output = Result<Rows, DbError>> {
        std::future::ready(super::sqlite::run_stmt(self.conn, stmt).and_then(|rows| stmt.check_changed(rows)))
    }
}

struct PgTx<'t> {
    tx: &'t deadpool_postgres::Transaction<'t>,
    /// A statement changed a table's shape: cached plans over it are stale after the commit.
    schema_changed: bool,
    /// A cached plan was stale: the transaction is worth one more try with fresh plans.
    stale_plan: bool,
    /// The transaction lost to a concurrent one: it is worth trying again.
    contended: bool,
}

impl Tx for PgTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn run(&mut self, stmt: &Stmt) -> Result<Rows, DbError> {
        self.schema_changed |= super::postgres::changes_schema(&stmt.sql);
        let result = super::postgres::run_stmt(self.tx, stmt).await.and_then(|rows| stmt.check_changed(rows));
        self.stale_plan |= result.as_ref().is_err_and(DbError::is_stale_plan);
        self.contended |= result.as_ref().is_err_and(DbError::is_contended);
        result
    }
}

impl Db {
    /// Runs `work` in a transaction: all it wrote is committed when it succeeds, nothing when
    /// it fails. Answers after the commit.
    pub async fn transaction<W: TxWork>(&self, work: W) -> Result<W::Output, ApiError> {
        match self {
            Db::Sqlite(pool) => pool.write(move |conn| poll_now(work.run(&mut SqliteTx { conn }))).await,
            Db::Postgres(pool) => {
                let mut tries = 1;
                loop {
                    match pg_transaction(pool, &work).await {
                        Err((_, Retry::StalePlan)) if tries == 1 => pool.forget_statements(),
                        Err((_, Retry::Contended)) if tries < super::postgres::CONTENDED_TRIES => {}
                        other => return other.map_err(|(err, _)| err),
                    }
                    tries += 1;
                }
            }
        }
    }
}

/// Why a failed transaction is worth another try, if it is.
enum Retry {
    No,
    StalePlan,
    Contended,
}

/// One try of `work` on PostgreSQL; a failure says whether it is worth another.
async fn pg_transaction<W: TxWork>(pool: &super::postgres::PgPool, work: &W) -> Result<W::Output, (ApiError, Retry)> {
    let fail = |e: tokio_postgres::Error| (ApiError::from(DbError::Other(e.to_string())), Retry::No);
    let mut client = pool.client().await.map_err(|e| (e.into(), Retry::No))?;
    let pg = client.transaction().await.map_err(fail)?;
    let mut tx = PgTx { tx: &pg, schema_changed: false, stale_plan: false, contended: false };
    let output = work.run(&mut tx).await.map_err(|err| {
        let retry = match (tx.stale_plan, tx.contended) {
            (true, _) => Retry::StalePlan,
            (_, true) => Retry::Contended,
            _ => Retry::No,
        };
        (err, retry)
    });
    let schema_changed = tx.schema_changed;
    let output = output?;
    pg.commit().await.map_err(fail)?;
    if schema_changed {
        pool.forget_statements();
    }
    Ok(output)
}

/// Drives a future whose every step is ready (SQLite statements run synchronously) to its end.
fn poll_now<R>(future: impl Future<Output = Result<R, ApiError>>) -> Result<R, ApiError> {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(ApiError::internal("an SQLite transaction waited on something that is not SQLite")),
    }
}
