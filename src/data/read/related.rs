//! The rows related to a page: what expand (collections surface) and embed (tables surface)
//! both read. The keys of a whole page go in one hand-off, split into statements of at most
//! [`IN_CHUNK`] keys (a page of `many` relations can name more keys than a statement takes
//! parameters); the related table's read rule applies, as to any read.

use super::{Deleted, Order, Paging, ReadPlan};
use crate::data::access::Scope;
use crate::data::catalog::{Column, Table};
use crate::data::query::SortKey;
use crate::data::{Stmt, Store, Value};
use crate::error::ApiError;

/// The most keys one statement binds (SQLite takes 32,766 parameters, PostgreSQL 65,535).
pub const IN_CHUNK: usize = 500;

/// The rows found, each with the fetched columns in order.
pub type RelatedRows = Vec<Vec<Value>>;

/// Whether the related rows of one key must come in the table's key order (an embedded array
/// shows them in that order) or may come in any (expand looks each up by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelatedOrder {
    ByKey,
    Any,
}

impl Store {
    /// The live rows of `table` within `scope` whose `column` holds one of `keys`, with
    /// `columns`, in the table's key order when asked.
    pub async fn related_rows(
        &self,
        table: &Table,
        scope: &Scope,
        columns: &[&Column],
        (column, keys): (&Column, &[Value]),
        order: RelatedOrder,
    ) -> Result<RelatedRows, ApiError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let order = match (order, table.key_column()) {
            (RelatedOrder::ByKey, Some(key)) => Order::Keys(vec![SortKey::asc(&key.name)]),
            _ => Order::Unordered,
        };
        let dialect = self.db.dialect();
        let stmts = keys
            .chunks(IN_CHUNK)
            .map(|chunk| {
                let mut plan = ReadPlan::of(table, scope.clone(), Deleted::Hidden, columns.to_vec());
                plan.within_keys = Some((column, chunk));
                plan.order = order.clone();
                plan.paging = Paging::All;
                plan.compile(dialect).map(|c| c.page.unwrap_or_else(|| Stmt::new("SELECT 1 WHERE 1 = 0", vec![])))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let results = self.db.read_many(stmts).await?;
        Ok(results.into_iter().flat_map(|rows| rows.rows).collect())
    }
}
