//! Counts for `GET /admin/stats` and `GET /metrics`: users, live sessions, collections and
//! their live records, and the database's size.

use serde::Serialize;

use super::sql::quote_ident;
use super::{Dialect, Store, Value};
use crate::error::ApiError;

#[derive(Debug, Serialize)]
pub struct DbStats {
    pub users: i64,
    pub sessions_active: i64,
    pub collections: i64,
    /// Live (not soft-deleted) records of every collection.
    pub records: i64,
    pub database_bytes: i64,
}

impl Store {
    pub async fn stats(&self) -> Result<DbStats, ApiError> {
        let now = crate::util::now_ms();
        let size = match self.db.dialect() {
            Dialect::Sqlite => "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            Dialect::Postgres => "SELECT pg_database_size(current_database())",
        };
        let collections: Vec<_> = self.catalog.list().into_iter().filter(|t| t.collection.is_some()).collect();
        let mut stmts = vec![
            self.db.stmt("SELECT COUNT(*) FROM _fb_users", vec![]),
            self.active_sessions_stmt(now),
            self.db.stmt(size, vec![]),
        ];
        for table in &collections {
            let live = if table.column("_deleted_at").is_some() { " WHERE _deleted_at IS NULL" } else { "" };
            stmts.push(self.db.stmt(&format!("SELECT COUNT(*) FROM {}{live}", quote_ident(&table.name)), vec![]));
        }
        let counts: Vec<i64> = self
            .db
            .read_many(stmts)
            .await?
            .into_iter()
            .map(|rows| rows.rows.first().and_then(|row| row[0].as_int()).unwrap_or(0))
            .collect();
        Ok(DbStats {
            users: counts[0],
            sessions_active: counts[1],
            database_bytes: counts[2],
            collections: collections.len() as i64,
            records: counts[3..].iter().sum(),
        })
    }

    /// Which database this is (PostgreSQL: database and schema): for naming what instances of
    /// one deployment share.
    pub async fn database_identity(&self) -> Result<String, super::DbError> {
        let sql = match self.db.dialect() {
            Dialect::Sqlite => "SELECT 'sqlite'",
            Dialect::Postgres => "SELECT current_database() || '.' || current_schema()",
        };
        let rows = self.db.read(self.db.stmt(sql, vec![])).await?;
        Ok(rows.rows.first().and_then(|row| row[0].text()).unwrap_or_default())
    }

    /// Sessions neither revoked nor expired at `now`.
    pub async fn active_sessions(&self) -> Result<i64, ApiError> {
        let rows = self.db.read(self.active_sessions_stmt(crate::util::now_ms())).await?;
        Ok(rows.rows.first().and_then(|row| row[0].as_int()).unwrap_or(0))
    }

    fn active_sessions_stmt(&self, now: i64) -> super::Stmt {
        self.db.stmt(
            "SELECT COUNT(*) FROM _fb_sessions WHERE revoked_at IS NULL AND expires_at > ?",
            vec![Value::Int(now)],
        )
    }
}
