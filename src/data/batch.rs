//! Bulk create and batches of creates, updates and deletes: each request runs in one
//! transaction, so all of it takes effect or none does. A failure names the 0-based index of
//! the record or operation at fault.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::access::{self, Caller, Scope};
use super::catalog::Table;
use super::records::{Deleted, Records, body_object, check_known_fields, missing_columns, rules, typed_fields};
use super::{Stmt, Store};
use crate::error::ApiError;

pub use crate::limits::{MAX_BATCH, MAX_BULK};

/// One operation of a batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub op: String,
    pub id: Option<String>,
    pub data: Option<Json>,
}

fn at(index: usize, err: ApiError) -> ApiError {
    match err {
        ApiError::AtIndex { .. } => err,
        other => ApiError::AtIndex { index, inner: Box::new(other) },
    }
}

impl Store {
    /// Creates every record of `bodies` or none.
    pub async fn bulk_create(
        &self,
        name: &str,
        caller: &Caller,
        bodies: &[Json],
        auto_create: bool,
    ) -> Result<Vec<Json>, ApiError> {
        if bodies.is_empty() || bodies.len() > MAX_BULK {
            return Err(ApiError::bad_request(format!("a bulk create takes 1 to {MAX_BULK} records (MAX_BULK)")));
        }
        let table = self.writable_collection(name, caller, auto_create).await?;
        let mut missing = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            missing_columns(&table, body_object(body).map_err(|e| at(i, e))?, auto_create, &mut missing)
                .map_err(|e| at(i, e))?;
        }
        if !missing.is_empty() {
            // Everything that can refuse the write is checked before the schema changes.
            for (i, body) in bodies.iter().enumerate() {
                check_known_fields(&table, body_object(body)?, true).map_err(|e| at(i, e))?;
            }
        }
        let table = if missing.is_empty() { table } else { self.add_columns(&table.name, &missing).await? };
        let mut stmts = Vec::with_capacity(bodies.len());
        let mut out = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let values = typed_fields(&table, body_object(body)?, true).map_err(|e| at(i, e))?;
            let (stmt, columns) = self.insert_stmt(&table, caller, values)?;
            stmts.push(stmt);
            out = columns;
        }
        let results = self.db.write_many(stmts).await?;
        Ok(results.into_iter().map(|rows| first_record(Records::new(&out, rows))).collect())
    }

    /// Runs create, update and delete operations in one transaction. Access rules apply to
    /// each; an update or delete of a record that does not exist (or that the caller may not
    /// change) fails the batch.
    pub async fn batch(
        &self,
        name: &str,
        caller: &Caller,
        operations: &[Operation],
        auto_create: bool,
    ) -> Result<Vec<Json>, ApiError> {
        if operations.is_empty() || operations.len() > MAX_BATCH {
            return Err(ApiError::bad_request(format!("a batch takes 1 to {MAX_BATCH} operations (MAX_BATCH)")));
        }
        let creates = operations.iter().any(|o| o.op == "create");
        let table = if creates {
            self.writable_collection(name, caller, auto_create).await?
        } else {
            self.collection(name).await?
        };
        let scopes = self.batch_scopes(&table, caller, operations).await?;
        let mut missing = Vec::new();
        for (i, operation) in operations.iter().enumerate() {
            if let Some(data) = &operation.data {
                let data = body_object(data).map_err(|e| at(i, e))?;
                missing_columns(&table, data, auto_create, &mut missing).map_err(|e| at(i, e))?;
            }
        }
        if !missing.is_empty() {
            // Everything that can refuse the batch is checked before the schema changes.
            for (i, operation) in operations.iter().enumerate() {
                if let Some(data) = &operation.data {
                    check_known_fields(&table, body_object(data)?, operation.op == "create").map_err(|e| at(i, e))?;
                }
            }
        }
        let table = if missing.is_empty() { table } else { self.add_columns(&table.name, &missing).await? };

        let mut stmts: Vec<Stmt> = Vec::with_capacity(operations.len());
        // The operation each statement belongs to: a delete brings its `on_delete` effects.
        let mut op_of_stmt: Vec<usize> = Vec::with_capacity(operations.len());
        let mut shapes = Vec::with_capacity(operations.len());
        for (i, operation) in operations.iter().enumerate() {
            let data = |creating: bool| -> Result<_, ApiError> {
                let data = operation.data.as_ref().ok_or_else(|| ApiError::bad_field("data", "'data' is required"))?;
                typed_fields(&table, body_object(data)?, creating)
            };
            let id = || operation.id.as_deref().ok_or_else(|| ApiError::bad_field("id", "'id' is required"));
            let mut effects = Vec::new();
            let (stmt, columns) = match operation.op.as_str() {
                "create" => self.insert_stmt(&table, caller, data(true).map_err(|e| at(i, e))?)?,
                "update" => {
                    let (stmt, columns) = self.update_stmt(
                        &table,
                        id().map_err(|e| at(i, e))?,
                        data(false).map_err(|e| at(i, e))?,
                        &scopes.update,
                        Deleted::Hidden,
                    )?;
                    (stmt.must_change(), columns)
                }
                "delete" => {
                    let id = id().map_err(|e| at(i, e))?;
                    let stmt = self.soft_delete_stmt(&table, id, &scopes.delete).must_change();
                    effects = self.on_delete_effects(&table, id, false).await.map_err(|e| at(i, e))?;
                    (stmt, Vec::new())
                }
                other => {
                    return Err(at(
                        i,
                        ApiError::bad_field("op", format!("unknown op '{other}': use create, update or delete")),
                    ));
                }
            };
            stmts.push(stmt);
            op_of_stmt.push(i);
            for effect in effects {
                stmts.push(effect);
                op_of_stmt.push(i);
            }
            shapes.push(columns);
        }
        let results = self.db.write_many(stmts).await.map_err(|err| match err.into() {
            ApiError::AtIndex { index, inner } => {
                let op = op_of_stmt.get(index).copied().unwrap_or(index);
                match *inner {
                    ApiError::NotFound(_) => at(op, ApiError::not_found("record not found (or not yours to change)")),
                    other => at(op, other),
                }
            }
            other => other,
        })?;
        // The first statement of each operation carries its result.
        let mut primary = Vec::with_capacity(operations.len());
        for (rows, (i, op)) in results.into_iter().zip(op_of_stmt.iter().enumerate()) {
            if i == 0 || op_of_stmt[i - 1] != *op {
                primary.push(rows);
            }
        }
        Ok(primary
            .into_iter()
            .zip(shapes)
            .zip(operations)
            .map(|((rows, columns), operation)| {
                if operation.op == "delete" {
                    json!({ "_id": operation.id, "deleted": true })
                } else {
                    first_record(Records::new(&columns, rows))
                }
            })
            .collect())
    }
}

/// The scopes a batch's updates and deletes run in.
struct BatchScopes {
    update: Scope,
    delete: Scope,
}

impl Store {
    /// Checks, before anything is changed, that the caller may make every operation of the
    /// batch and that every record it updates or deletes is there and within the caller's
    /// scope: a refused batch adds no field and runs no `on_delete` effect.
    async fn batch_scopes(
        &self,
        table: &Table,
        caller: &Caller,
        operations: &[Operation],
    ) -> Result<BatchScopes, ApiError> {
        let mut scopes = BatchScopes { update: Scope::All, delete: Scope::All };
        for (op, rule, scope) in
            [("update", &rules(table).update, &mut scopes.update), ("delete", &rules(table).delete, &mut scopes.delete)]
        {
            let first = operations.iter().position(|o| o.op == op);
            let Some(first) = first else { continue };
            *scope = access::check(rule, caller).map_err(|e| at(first, e))?;
            let ids: Vec<&str> = operations.iter().filter(|o| o.op == op).filter_map(|o| o.id.as_deref()).collect();
            let found = self.ids_in_scope(table, &ids, scope, Deleted::Hidden).await?;
            let missing = operations
                .iter()
                .position(|o| o.op == op && o.id.as_deref().is_some_and(|id| !found.iter().any(|f| f == id)));
            if let Some(i) = missing {
                return Err(at(i, ApiError::not_found("record not found (or not yours to change)")));
            }
        }
        Ok(scopes)
    }
}

fn first_record(records: Records) -> Json {
    records.first().map(|r| serde_json::to_value(r).unwrap_or(Json::Null)).unwrap_or(Json::Null)
}
