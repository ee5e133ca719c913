//! Cached counts on PostgreSQL. A counted page costs the count of every match (a scan of
//! tens of thousands of rows for a broad filter) where the page itself is one index scan. Each
//! write transaction of the pipeline bumps its tables' row in `_fb_table_versions` (see the
//! write executor); a count is kept with the version it was taken at, and a page reads the
//! version (one key lookup, sent with the page) to know whether the kept count still holds.
//! The version lives in the database, so a write through any instance invalidates the counts
//! of every instance, and a count is never older than the last write acknowledged.
//!
//! SQLite needs none of this: its readers keep counts until `PRAGMA data_version` says the
//! database changed (see `sqlite.rs`), which is exact for a single file.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::data::{Dialect, Stmt};

/// The most counts kept; the cache is emptied when it is full.
const MAX_ENTRIES: usize = 10_000;

/// Counts by statement, each with the version of its table it was taken at.
#[derive(Default)]
pub struct CountCache {
    entries: Mutex<HashMap<String, Kept>>,
}

#[derive(Clone, Copy)]
struct Kept {
    version: i64,
    total: i64,
}

impl CountCache {
    /// The count `stmt` answered at `version`, if it was kept.
    pub fn get(&self, stmt: &Stmt, version: i64) -> Option<i64> {
        let entries = self.entries.lock().expect("count cache");
        entries.get(&key(stmt)).filter(|k| k.version == version).map(|k| k.total)
    }

    /// Whether some count of `stmt` is kept, at any version.
    pub fn knows(&self, stmt: &Stmt) -> bool {
        self.entries.lock().expect("count cache").contains_key(&key(stmt))
    }

    pub fn put(&self, stmt: &Stmt, version: i64, total: i64) {
        let mut entries = self.entries.lock().expect("count cache");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key(stmt), Kept { version, total });
    }
}

fn key(stmt: &Stmt) -> String {
    format!("{}\u{0}{:?}", stmt.sql, stmt.params)
}

/// The statement that reads a table's version (0 before its first write).
pub fn version_stmt(table: &str) -> Stmt {
    Stmt::fixed(
        Dialect::Postgres,
        "SELECT COALESCE((SELECT version FROM _fb_table_versions WHERE name = ?), 0)",
        vec![table.into()],
    )
}

/// The statement that bumps a table's version inside a write transaction.
pub fn bump_stmt(table: &str) -> Stmt {
    Stmt::fixed(Dialect::Postgres, &format!("{BUMP} VALUES (?, 1) {ON_CONFLICT}"), vec![table.into()])
}

/// The SQL that bumps the versions of the tables named in the JSON array `$1` (a part of the
/// write transaction's closing statement).
pub fn bump_all_sql() -> String {
    format!("{BUMP} SELECT name, 1 FROM jsonb_array_elements_text($1) AS name {ON_CONFLICT}")
}

const BUMP: &str = "INSERT INTO _fb_table_versions (name, version)";
const ON_CONFLICT: &str = "ON CONFLICT (name) DO UPDATE SET version = _fb_table_versions.version + 1";
