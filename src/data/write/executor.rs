//! The executor: runs a [`Plan`]'s mutations inside one transaction, step by step in the
//! order the [module](super) describes, and collects the change of every record written.

use std::sync::Arc;

use super::{Mutation, Relation, Scopes, WriteOptions, Written};
use crate::data::access::{self, Caller};
use crate::data::catalog::{Column, ColumnType, Table};
use crate::data::feed::{Actor, Change, ChangeOp, RecordData};
use crate::data::records::{
    Deleted, Records, base_conditions, insert_stmt, missing_columns, output_columns, record_not_found, returning,
    rules, short, typed_fields, update_stmt,
};
use crate::data::relations::{Effect, on_delete_plan, restricted};
use crate::data::sql::{SqlBuilder, quote_ident};
use crate::data::tx::{Tx, TxWork};
use crate::data::{DbError, Dialect, Rows, Stmt, Value, search};
use crate::error::ApiError;
use crate::util::now_ms;

/// Everything a request's writes need, checked for access already.
#[derive(Clone)]
pub(in crate::data) struct Plan {
    pub table: Arc<Table>,
    pub caller: Caller,
    pub mutations: Vec<Mutation>,
    pub options: WriteOptions,
    pub scopes: Scopes,
    /// Every relation (the ones pointing at `table` matter for deletes).
    pub relations: Vec<Relation>,
    /// The collections whose records point at `table`, for the changes their effects make.
    pub related: Vec<Arc<Table>>,
}

/// What the transaction did.
#[derive(Default)]
pub(in crate::data) struct Outcome {
    pub written: Vec<Written>,
    pub changes: Vec<Change>,
    /// Columns were added: the catalog must be read again.
    pub schema_changed: bool,
}

/// Refusal of a field another request added first (the plan is made again).
const DUPLICATE_COLUMN: &str = "a field was added by another request at the same moment: try again";

pub(in crate::data) fn is_duplicate_column(err: &ApiError) -> bool {
    matches!(err, ApiError::Unavailable(msg) if msg == DUPLICATE_COLUMN)
}

impl TxWork for Arc<Plan> {
    type Output = Outcome;

    async fn run<T: Tx>(&self, tx: &mut T) -> Result<Outcome, ApiError> {
        let old = self.existing(tx).await?;
        let (table, schema_changed) = self.add_fields(tx).await?;
        let values = self.validate(&table)?;
        let mut outcome = Outcome { schema_changed, ..Outcome::default() };
        for (i, (mutation, values)) in self.mutations.iter().zip(values).enumerate() {
            let old = old[i].clone();
            let written = self.write(tx, &table, mutation, values, old).await.map_err(|e| self.at(i, e))?;
            let (record, change) = written;
            outcome.written.push(Written { record });
            outcome.changes.push(change);
            if let Mutation::Delete { id } = mutation {
                let effects = self.effects(tx, id).await.map_err(|e| self.at(i, e))?;
                outcome.changes.extend(effects);
            }
        }
        Ok(outcome)
    }
}

impl Plan {
    /// The error of mutation `index`, named by its index in a bulk or batch.
    fn at(&self, index: usize, err: ApiError) -> ApiError {
        match err {
            ApiError::AtIndex { .. } => err,
            other if self.options.indexed => ApiError::AtIndex { index, inner: Box::new(other) },
            other => other,
        }
    }

    fn dialect<T: Tx>(tx: &T) -> Dialect {
        tx.dialect()
    }

    /// Step 2: each record to update, delete or restore, read within the caller's scope.
    async fn existing<T: Tx>(&self, tx: &mut T) -> Result<Vec<Option<RecordData>>, ApiError> {
        let columns = output_columns(&self.table, None, Deleted::Shown)?;
        let shape = shape(&columns);
        let mut old = Vec::with_capacity(self.mutations.len());
        for (i, mutation) in self.mutations.iter().enumerate() {
            let Some(id) = mutation.id() else {
                old.push(None);
                continue;
            };
            let mut b = SqlBuilder::new(Self::dialect(tx));
            b.push("SELECT ").ident_list(columns.iter().map(|c| c.name.as_str())).push(" FROM ");
            b.ident(&self.table.name).push(" WHERE \"_id\" = ").param(id.into());
            match mutation {
                Mutation::Restore { .. } => {
                    b.push(" AND \"_deleted_at\" IS NOT NULL");
                    base_conditions(&mut b, &self.scopes.update, Deleted::Shown);
                }
                Mutation::Delete { .. } => base_conditions(&mut b, &self.scopes.delete, self.options.deleted),
                _ => base_conditions(&mut b, &self.scopes.update, self.options.deleted),
            }
            let rows = tx.run(&b.finish()).await?;
            match rows.rows.into_iter().next() {
                Some(values) => old.push(Some(RecordData { columns: shape.clone(), values })),
                None => return Err(self.at(i, self.refusal(tx, mutation, id).await)),
            }
        }
        Ok(old)
    }

    /// Why a record to change was not found: 403 when the caller may read it but not change
    /// it, otherwise 404 (never revealing a record the caller may not read).
    async fn refusal<T: Tx>(&self, tx: &mut T, mutation: &Mutation, id: &str) -> ApiError {
        let name = &self.table.name;
        if matches!(mutation, Mutation::Restore { .. }) {
            return ApiError::not_found(format!("no deleted record '{}' in '{name}'", short(id)));
        }
        if self.options.indexed {
            return ApiError::not_found("record not found (or not yours to change)");
        }
        let Ok(scope) = access::check(&rules(&self.table).read, &self.caller) else {
            return record_not_found(name, id);
        };
        let mut b = SqlBuilder::new(Self::dialect(tx));
        b.push("SELECT \"_id\" FROM ").ident(name).push(" WHERE \"_id\" = ").param(id.into());
        base_conditions(&mut b, &scope, Deleted::Hidden);
        match tx.run(&b.finish()).await {
            Ok(rows) if !rows.rows.is_empty() => ApiError::Forbidden("you may not change this record".into()),
            _ => record_not_found(name, id),
        }
    }

    /// Step 3: the fields the writes bring that the table lacks, added as columns (and to the
    /// search index). Answers the table as it is now.
    async fn add_fields<T: Tx>(&self, tx: &mut T) -> Result<(Arc<Table>, bool), ApiError> {
        let mut missing = Vec::new();
        for (i, mutation) in self.mutations.iter().enumerate() {
            if let Some(fields) = mutation.fields() {
                missing_columns(&self.table, fields, self.options.auto_create, &mut missing)
                    .map_err(|e| self.at(i, e))?;
            }
        }
        if missing.is_empty() {
            return Ok((self.table.clone(), false));
        }
        let dialect = Self::dialect(tx);
        let mut table = (*self.table).clone();
        for (name, ty) in &missing {
            let sql = format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                quote_ident(&table.name),
                quote_ident(name),
                dialect.type_name(*ty)
            );
            tx.run(&Stmt::new(sql, vec![])).await.map_err(|err| duplicate_column(err, name))?;
            let mut column = Column::new(name, *ty);
            column.declared = dialect.type_name(*ty).to_owned();
            table.columns.push(column);
        }
        let indexed = table.collection.as_ref().and_then(|c| c.search_index.clone());
        let fields = search::search_fields(&table);
        if let Some(indexed) = indexed
            && indexed != fields
        {
            // A new text field of a searched collection is searched from now on.
            for stmt in search::rebuild_stmts(dialect, &table.name, &fields) {
                tx.run(&stmt).await?;
            }
            if let Some(meta) = table.collection.as_mut() {
                meta.search_index = Some(fields);
            }
        }
        Ok((Arc::new(table), true))
    }

    /// Step 4: each write's fields, checked against the collection's rules and typed for their
    /// columns.
    fn validate(&self, table: &Table) -> Result<Vec<Vec<(String, Value)>>, ApiError> {
        self.mutations
            .iter()
            .enumerate()
            .map(|(i, mutation)| match mutation {
                Mutation::Create { fields } => typed_fields(table, fields, true).map_err(|e| self.at(i, e)),
                Mutation::Update { fields, .. } => typed_fields(table, fields, false).map_err(|e| self.at(i, e)),
                _ => Ok(Vec::new()),
            })
            .collect()
    }

    /// Step 5: one mutation's statement, the record it leaves and its change.
    async fn write<T: Tx>(
        &self,
        tx: &mut T,
        table: &Table,
        mutation: &Mutation,
        values: Vec<(String, Value)>,
        old: Option<RecordData>,
    ) -> Result<(Option<Records>, Change), ApiError> {
        let dialect = Self::dialect(tx);
        let (stmt, columns, op) = match mutation {
            Mutation::Create { .. } => {
                let (stmt, columns) = insert_stmt(dialect, table, &self.caller, values)?;
                (stmt, columns, ChangeOp::Create)
            }
            Mutation::Update { id, .. } => {
                let (stmt, columns) =
                    update_stmt(dialect, table, id, values, &self.scopes.update, self.options.deleted)?;
                (stmt.must_change(), columns, ChangeOp::Update)
            }
            Mutation::Restore { id } => {
                let (stmt, columns) = restore_stmt(dialect, table, id, &self.scopes)?;
                (stmt.must_change(), columns, ChangeOp::Update)
            }
            Mutation::Delete { id } => {
                let stmt = delete_stmt(dialect, table, id, &self.scopes, self.options.deleted);
                tx.run(&stmt).await?;
                let change = self.change(&table.name, ChangeOp::Delete, old.clone(), old);
                return Ok((None, change));
            }
        };
        let rows = tx.run(&stmt).await?;
        let record = RecordData { columns: shape(&columns), values: rows.rows.first().cloned().unwrap_or_default() };
        let change = self.change(&table.name, op, Some(record), old);
        Ok((Some(Records::new(&columns, rows)), change))
    }

    fn change(&self, collection: &str, op: ChangeOp, record: Option<RecordData>, old: Option<RecordData>) -> Change {
        let id = record.as_ref().or(old.as_ref()).and_then(|r| r.get("_id")).and_then(Value::text);
        Change { collection: collection.to_owned(), op, id, record, old_record: old, actor: Actor::from(&self.caller) }
    }

    /// Step 6: the `on_delete` effects of deleting record `id`, each record they write a change.
    async fn effects<T: Tx>(&self, tx: &mut T, id: &str) -> Result<Vec<Change>, ApiError> {
        let hard = self.options.deleted == Deleted::Shown;
        let columns_of = |collection: &str| -> Vec<String> {
            self.related
                .iter()
                .find(|t| t.name == collection)
                .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default()
        };
        let mut changes = Vec::new();
        for effect in on_delete_plan(Self::dialect(tx), &self.relations, &self.table.name, id, hard, Some(&columns_of))
        {
            match effect {
                Effect::Refuse { probe, relation } => {
                    if !tx.run(&probe).await?.rows.is_empty() {
                        return Err(restricted(&relation));
                    }
                }
                Effect::Write { stmt, relation, deletes } => {
                    let rows = tx.run(&stmt).await?;
                    let Some(related) = self.related.iter().find(|t| t.name == relation.collection) else { continue };
                    let shape = shape(&related.columns.iter().collect::<Vec<_>>());
                    let op = if deletes { ChangeOp::Delete } else { ChangeOp::Update };
                    changes.extend(rows_as_changes(rows, &shape, |record| {
                        self.change(&relation.collection, op, Some(record), None)
                    }));
                }
            }
        }
        Ok(changes)
    }
}

fn rows_as_changes(
    rows: Rows,
    shape: &Arc<[(String, ColumnType)]>,
    change: impl Fn(RecordData) -> Change,
) -> impl Iterator<Item = Change> {
    let shape = shape.clone();
    rows.rows.into_iter().map(move |values| change(RecordData { columns: shape.clone(), values }))
}

/// The names and types of `columns`, shared by every record of that shape.
fn shape(columns: &[&Column]) -> Arc<[(String, ColumnType)]> {
    columns.iter().map(|c| (c.name.clone(), c.ty)).collect()
}

/// `UPDATE … SET "_deleted_at" = NULL … RETURNING` the restored record.
fn restore_stmt<'t>(
    dialect: Dialect,
    table: &'t Table,
    id: &str,
    scopes: &Scopes,
) -> Result<(Stmt, Vec<&'t Column>), ApiError> {
    let mut b = SqlBuilder::new(dialect);
    b.push("UPDATE ").ident(&table.name).push(" SET \"_deleted_at\" = NULL, \"_updated_at\" = ");
    b.param(now_ms().into()).push(" WHERE \"_id\" = ").param(id.into());
    b.push(" AND \"_deleted_at\" IS NOT NULL");
    base_conditions(&mut b, &scopes.update, Deleted::Shown);
    let out = output_columns(table, None, Deleted::Hidden)?;
    returning(&mut b, &out);
    Ok((b.finish(), out))
}

/// The soft delete of a record, or (the admin's record endpoints) its delete for good.
fn delete_stmt(dialect: Dialect, table: &Table, id: &str, scopes: &Scopes, deleted: Deleted) -> Stmt {
    let mut b = SqlBuilder::new(dialect);
    if deleted == Deleted::Shown {
        b.push("DELETE FROM ").ident(&table.name).push(" WHERE \"_id\" = ").param(id.into());
    } else {
        let now = now_ms();
        b.push("UPDATE ").ident(&table.name).push(" SET \"_deleted_at\" = ").param(now.into());
        b.push(", \"_updated_at\" = ").param(now.into()).push(" WHERE \"_id\" = ").param(id.into());
    }
    base_conditions(&mut b, &scopes.delete, deleted);
    b.finish().must_change()
}

/// An `ADD COLUMN` that failed because the column exists: another request added it since the
/// catalog was read.
fn duplicate_column(err: DbError, name: &str) -> ApiError {
    let text = err.to_string();
    if text.contains("duplicate column")
        || text.contains(&format!("column \"{name}\"")) && text.contains("already exists")
    {
        return ApiError::Unavailable(DUPLICATE_COLUMN.into());
    }
    err.into()
}
