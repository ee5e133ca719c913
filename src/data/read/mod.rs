//! The read plan: every read of records, whichever surface asks (a collection's list, count,
//! aggregate and get; the tables surface's select and single-row reads; the related records
//! of expand and embed), is a [`ReadPlan`]: a table and the caller's scope, the columns to
//! fetch, the filters and search, a row by key, the order (sort keys with the key as
//! tiebreaker, or search rank) and the page (offset or keyset), and whether to count.
//!
//! [`ReadPlan::compile`] builds the conditions once (`FROM … WHERE …`) and derives from them
//! the page statement and, when asked, the count statement. A collection is a profile of a
//! table here (its key is `_id`, soft-deleted records hidden unless shown, an owner column),
//! never a second pipeline.

pub mod counts;
mod related;

use super::access::Scope;
use super::catalog::{Column, Table};
use super::query::{Query, SortKey, compile};
use super::search::{self, Expr};
use super::sql::SqlBuilder;
use super::tables::key_condition;
use super::{Dialect, Rows, Stmt, Store, Value};
use crate::error::ApiError;

pub use related::{RelatedOrder, RelatedRows};

/// Whether a read shows soft-deleted records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Hidden,
    Shown,
}

/// The order of a page.
#[derive(Debug, Clone)]
pub enum Order<'q> {
    /// The database's own order (single rows, counts, lookups by key).
    Unordered,
    /// Sort keys, the table's key last (see [`with_tiebreaker`]).
    Keys(Vec<SortKey>),
    /// Search results, best first.
    Rank(&'q Expr),
}

/// Which rows of the ordered matches a page holds.
#[derive(Debug, Clone)]
pub enum Paging {
    /// No page: only the count is read.
    CountOnly,
    /// Every match.
    All,
    /// `limit` rows after skipping `offset`.
    Offset { limit: u32, offset: u64 },
    /// `limit` rows after the row whose sort values are `cursor` (keyset paging).
    After { limit: u32, cursor: Vec<Value> },
}

/// One read of one table.
#[derive(Debug, Clone)]
pub struct ReadPlan<'t> {
    pub table: &'t Table,
    pub scope: Scope,
    pub deleted: Deleted,
    /// The columns fetched, in this order.
    pub columns: Vec<&'t Column>,
    /// Filters and search (its other fields are the surfaces' business).
    pub query: &'t Query,
    /// One row by key, on top of the filters.
    pub key: Option<&'t str>,
    /// Only the rows whose `column` holds one of these values (lookups of related rows).
    pub within_keys: Option<(&'t Column, &'t [Value])>,
    pub order: Order<'t>,
    pub paging: Paging,
    /// Also count every match (without paging).
    pub count: bool,
}

/// A plan's statements: the page (unless only counting) and the count (when asked).
pub struct Compiled {
    pub page: Option<Stmt>,
    pub count: Option<Stmt>,
}

/// A plan's answer.
pub struct Read {
    pub rows: Rows,
    pub total: Option<i64>,
}

impl<'t> ReadPlan<'t> {
    /// A plan of `table` within `scope` with no filter, every column of `columns`, no order.
    pub fn of(table: &'t Table, scope: Scope, deleted: Deleted, columns: Vec<&'t Column>) -> Self {
        static NO_QUERY: std::sync::LazyLock<Query> = std::sync::LazyLock::new(Query::default);
        ReadPlan {
            table,
            scope,
            deleted,
            columns,
            query: &NO_QUERY,
            key: None,
            within_keys: None,
            order: Order::Unordered,
            paging: Paging::All,
            count: false,
        }
    }

    /// ` FROM … WHERE …`: the table (joined with the search matches on SQLite), the caller's
    /// scope, the filters and search, the key. What the page and the count share.
    pub fn conditions(&self, dialect: Dialect) -> Result<SqlBuilder, ApiError> {
        let (table, query) = (self.table, self.query);
        let mut b = SqlBuilder::new(dialect);
        search::from(&mut b, table, query.search.as_ref())?;
        b.push(" WHERE 1 = 1");
        within(&mut b, table, &self.scope, self.deleted);
        filters(&mut b, table, query)?;
        if let Some(key) = self.key {
            key_condition(&mut b, table, key)?;
        }
        if let Some((column, values)) = self.within_keys {
            b.push(" AND ").ident(&column.name).push(" IN (");
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                compile::bind(&mut b, column, value.clone());
            }
            b.push(")");
        }
        Ok(b)
    }

    /// The page statement and the count statement, from one compilation of the conditions.
    pub fn compile(&self, dialect: Dialect) -> Result<Compiled, ApiError> {
        let conditions = self.conditions(dialect)?;
        let count = self.count.then(|| conditions.with_prefix("SELECT COUNT(*)").finish().cached());
        if matches!(self.paging, Paging::CountOnly) {
            return Ok(Compiled { page: None, count });
        }
        let mut head = SqlBuilder::new(dialect);
        head.push("SELECT ");
        compile::select_list(&mut head, self.columns.iter().copied());
        let mut page = conditions.with_prefix(head.text());
        if let (Paging::After { cursor, .. }, Order::Keys(keys)) = (&self.paging, &self.order) {
            page.push(" AND ");
            compile::keyset_after(&mut page, self.table, keys, cursor)?;
        }
        match &self.order {
            Order::Unordered => {}
            Order::Keys(keys) if keys.is_empty() => {}
            Order::Keys(keys) => {
                compile::order_by(&mut page, self.table, keys)?;
            }
            Order::Rank(expr) => search::order_by_rank(&mut page, self.table, expr)?,
        }
        match &self.paging {
            Paging::Offset { limit, offset } => {
                page.push(" LIMIT ").param(i64::from(*limit).into());
                page.push(" OFFSET ").param((*offset as i64).into());
            }
            Paging::After { limit, .. } => {
                page.push(" LIMIT ").param(i64::from(*limit).into());
            }
            Paging::All | Paging::CountOnly => {}
        }
        Ok(Compiled { page: Some(page.finish()), count })
    }
}

impl Store {
    /// Runs a read plan: its page and its count in one hand-off (on PostgreSQL, the count of
    /// a collection comes from the [count cache](counts) while the table is unchanged).
    pub async fn read(&self, plan: &ReadPlan<'_>) -> Result<Read, ApiError> {
        self.checked(&plan.table.name, self.read_compiled(plan).await).await
    }

    async fn read_compiled(&self, plan: &ReadPlan<'_>) -> Result<Read, ApiError> {
        let compiled = plan.compile(self.db.dialect())?;
        let Some(count) = compiled.count else {
            let rows = match compiled.page {
                Some(page) => self.db.read(page).await?,
                None => Rows::default(),
            };
            return Ok(Read { rows, total: None });
        };
        if self.db.dialect() == Dialect::Postgres && plan.table.collection.is_some() {
            return self.read_with_cached_count(&plan.table.name, compiled.page, count).await;
        }
        let has_page = compiled.page.is_some();
        let mut results = self.db.read_many(compiled.page.into_iter().chain([count]).collect()).await?;
        let total = first_int(&results.pop().unwrap_or_default());
        let rows = if has_page { results.pop().unwrap_or_default() } else { Rows::default() };
        Ok(Read { rows, total: Some(total) })
    }

    /// The page, the table's version, and the count unless one is kept for that version.
    async fn read_with_cached_count(&self, table: &str, page: Option<Stmt>, count: Stmt) -> Result<Read, ApiError> {
        let has_page = page.is_some();
        // A count never kept goes with the first hand-off; a kept one is checked first.
        let send_count = !self.counts.knows(&count);
        let mut stmts: Vec<Stmt> = page.into_iter().collect();
        stmts.push(counts::version_stmt(table));
        if send_count {
            stmts.push(count.clone());
        }
        let mut results = self.db.read_many(stmts).await?;
        let counted = if send_count { Some(first_int(&results.pop().unwrap_or_default())) } else { None };
        let version = first_int(&results.pop().unwrap_or_default());
        let rows = if has_page { results.pop().unwrap_or_default() } else { Rows::default() };
        let total = match (counted, self.counts.get(&count, version)) {
            (Some(total), _) | (None, Some(total)) => total,
            (None, None) => first_int(&self.db.read(count.clone()).await?),
        };
        self.counts.put(&count, version, total);
        Ok(Read { rows, total: Some(total) })
    }
}

impl Store {
    /// The plan the database chooses for a plan's page, line by line (`EXPLAIN QUERY PLAN` on
    /// SQLite, `EXPLAIN` on PostgreSQL).
    pub async fn explain(&self, plan: &ReadPlan<'_>) -> Result<Vec<String>, ApiError> {
        let Some(mut page) = plan.compile(self.db.dialect())?.page else { return Ok(Vec::new()) };
        let (prefix, column) = match self.db.dialect() {
            Dialect::Sqlite => ("EXPLAIN QUERY PLAN ", 3),
            Dialect::Postgres => ("EXPLAIN ", 0),
        };
        page.sql.insert_str(0, prefix);
        // An SQLite connection notices a schema change (a new index) when a statement opens a
        // transaction, which EXPLAIN does not: a read of the table first, on the same connection.
        let mut touch = SqlBuilder::new(self.db.dialect());
        touch.push("SELECT 1 FROM ").ident(&plan.table.name).push(" LIMIT 1");
        let mut results = self.db.read_many(vec![touch.finish(), page]).await?;
        let rows = results.pop().unwrap_or_default();
        Ok(rows.rows.iter().filter_map(|r| r.get(column).and_then(Value::text)).collect())
    }
}

/// The integer in the first column of the first row (a count), 0 when there is none.
fn first_int(rows: &Rows) -> i64 {
    rows.rows.first().and_then(|r| r[0].as_int()).unwrap_or(0)
}

/// ` AND …`: the rows within `scope`. A collection hides soft-deleted records unless
/// `deleted` shows them; an owner scope keeps the caller's rows (`_owner_id`).
pub fn within(b: &mut SqlBuilder, table: &Table, scope: &Scope, deleted: Deleted) {
    if table.collection.is_some() && deleted == Deleted::Hidden {
        b.push(" AND \"_deleted_at\" IS NULL");
    }
    if let Scope::OwnedBy(owner) = scope {
        b.push(" AND \"_owner_id\" = ").param(owner.clone().into());
    }
}

/// The query's filters and search (on PostgreSQL; SQLite's search is a join in `FROM`), each
/// as ` AND …`.
pub fn filters(b: &mut SqlBuilder, table: &Table, query: &Query) -> Result<(), ApiError> {
    for filter in &query.filters {
        b.push(" AND ");
        compile::filter(b, table, filter)?;
    }
    search::filter(b, table, query.search.as_ref())
}

/// The sort keys plus the table's key as the last key, so the order is total (stable pages,
/// usable cursors). The key runs in the direction of the key before it: then an index on the
/// sort columns followed by the key (as Ferrobase builds them) delivers the whole order.
pub fn with_tiebreaker(table: &Table, sort: &[SortKey]) -> Vec<SortKey> {
    let mut sort = sort.to_vec();
    if let Some(key) = table.key_column()
        && !sort.iter().any(|k| k.column == key.name)
    {
        let descending = sort.last().is_some_and(|k| k.descending);
        sort.push(SortKey { column: key.name.clone(), descending, nulls_first: None });
    }
    sort
}
