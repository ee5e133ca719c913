//! The statements and values of the write pipeline, for both kinds of tables: a collection
//! (key `_id`, system fields, soft delete, owner column) and a table made with plain SQL (its
//! single-column primary key, deleted for good). Every statement returns whole rows, which
//! become the change events; each surface shows what it wants of them.

use serde_json::{Map, Value as Json};

use super::{Target, Upsert};
use crate::data::access::{Caller, Scope};
use crate::data::catalog::{Column, Table};
use crate::data::query::compile;
use crate::data::read::{Deleted, filters, within};
use crate::data::records::{insert_values, json_to_value, typed_fields};
use crate::data::sql::SqlBuilder;
use crate::data::tables::{Resolution, key_condition, no_key, unknown_body_column};
use crate::data::{Dialect, Stmt, Value, names};
use crate::error::{ApiError, codes};
use crate::util::now_ms;

/// The column rows are addressed by: `_id` of a collection, the single-column primary key of
/// another table.
pub(super) fn key(table: &Table) -> Result<&Column, ApiError> {
    table.key_column().ok_or_else(|| no_key(table))
}

/// Locks the rows with these keys in key order (PostgreSQL), so that transactions naming the
/// same rows in other orders wait for each other instead of deadlocking. Keys that do not fit
/// the key column (and tables without one) are left to the mutations' own reads, which refuse
/// them. `None` when there is nothing to lock.
pub(super) fn lock_in_key_order(dialect: Dialect, table: &Table, ids: &[&str]) -> Option<Stmt> {
    let key = table.key_column()?;
    let values: Vec<Value> = ids.iter().filter_map(|id| compile::typed(key, id).ok()).collect();
    if values.is_empty() {
        return None;
    }
    let mut b = SqlBuilder::new(dialect);
    b.push("SELECT 1 FROM ").ident(&table.name).push(" WHERE ").ident(&key.name).push(" IN (");
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        compile::bind(&mut b, key, value);
    }
    b.push(") ORDER BY ").ident(&key.name).push(" FOR UPDATE");
    Some(b.finish())
}

/// ` AND …` narrowing to the rows `target` picks.
pub(super) fn targeted(b: &mut SqlBuilder, table: &Table, target: &Target) -> Result<(), ApiError> {
    match target {
        Target::Id(id) => key_condition(b, table, id),
        Target::Filter(query) => filters(b, table, query),
    }
}

/// `SELECT <columns> FROM t WHERE …`: the rows a write will change, locked for it on
/// PostgreSQL (SQLite's single writer needs no lock).
pub(super) fn select_targets(
    dialect: Dialect,
    table: &Table,
    columns: &[&Column],
    scope: &Scope,
    deleted: Deleted,
    target: &Target,
) -> Result<Stmt, ApiError> {
    let mut b = SqlBuilder::new(dialect);
    b.push("SELECT ");
    compile::select_list(&mut b, columns.iter().copied()).push(" FROM ").ident(&table.name).push(" WHERE 1 = 1");
    within(&mut b, table, scope, deleted);
    targeted(&mut b, table, target)?;
    if dialect == Dialect::Postgres {
        // Rows are locked in key order, whatever order a scan meets them in (which changes as
        // rows are rewritten): concurrent writes of the same rows then wait for each other
        // instead of deadlocking.
        if let Some(key) = table.key_column() {
            b.push(" ORDER BY ").ident(&key.name);
        }
        b.push(" FOR UPDATE");
    }
    Ok(b.finish())
}

/// The row an upsert would merge with: the live row holding the same values in the conflict
/// columns; `None` when the body does not give them all.
pub(super) fn select_conflicting(
    dialect: Dialect,
    table: &Table,
    columns: &[&Column],
    fields: &Map<String, Json>,
    upsert: &Upsert,
) -> Result<Option<Stmt>, ApiError> {
    let mut b = SqlBuilder::new(dialect);
    b.push("SELECT ");
    compile::select_list(&mut b, columns.iter().copied()).push(" FROM ").ident(&table.name).push(" WHERE 1 = 1");
    for name in &upsert.on_conflict {
        let col = compile::column(table, name)?;
        let Some(value) = fields.get(&col.name).filter(|v| !v.is_null()) else { return Ok(None) };
        b.push(" AND ").ident(&col.name).push(" = ");
        compile::bind(&mut b, col, json_to_value(col, value)?);
    }
    if table.collection.is_some() {
        b.push(" AND \"_deleted_at\" IS NULL");
    }
    Ok(Some(b.finish()))
}

/// A write's fields typed for their columns. A collection ignores system fields (its field
/// rules are checked before, see `field_checks`); another table's `_owner_id` is the caller's
/// on insert, and only the admin may set it.
pub(super) fn typed_row(
    table: &Table,
    caller: &Caller,
    fields: &Map<String, Json>,
    creating: bool,
) -> Result<Vec<(String, Value)>, ApiError> {
    if table.collection.is_some() {
        return typed_fields(table, fields);
    }
    let mut values = Vec::with_capacity(fields.len() + 1);
    for (name, value) in fields {
        let col = table.column(name).ok_or_else(|| unknown_body_column(table, name))?;
        if col.name == "_owner_id" && !caller.is_admin() {
            return Err(ApiError::bad_field(name, "only the admin may set _owner_id"));
        }
        if col.primary_key && value.is_null() {
            return Err(null_key(table, col));
        }
        values.push((col.name.clone(), json_to_value(col, value)?));
    }
    if creating
        && !caller.is_admin()
        && table.column("_owner_id").is_some()
        && let Some(user) = caller.user_id()
    {
        values.push(("_owner_id".into(), Value::Text(user.to_owned())));
    }
    Ok(values)
}

/// 400: a key set to null. PostgreSQL refuses it as a not-null violation; SQLite would take
/// null for an INTEGER PRIMARY KEY as "pick the next rowid" (an insert then succeeds with a
/// key the client did not send) and keep a null in any other key column.
pub(super) fn null_key(table: &Table, col: &Column) -> ApiError {
    ApiError::bad_input(
        codes::NOT_NULL,
        format!("null value in column \"{}\" of relation \"{}\" violates not-null constraint", col.name, table.name),
    )
}

/// A PUT's values: the key may repeat the path's id but not differ from it, and every column
/// not given becomes null, but for the row's owner: `_owner_id` (a system field of a
/// collection, or a plain table's column) is kept unless given, which only the admin may do,
/// so that an owner's replacement does not give the row away.
pub(super) fn replacement(
    table: &Table,
    id: &str,
    mut values: Vec<(String, Value)>,
) -> Result<Vec<(String, Value)>, ApiError> {
    let key = key(table)?;
    if let Some(pos) = values.iter().position(|(c, _)| *c == key.name) {
        let path_id = compile::comparable(key, compile::typed(key, id)?);
        if compile::comparable(key, values[pos].1.clone()) != path_id {
            return Err(ApiError::bad_request(format!("the body's '{}' differs from the id in the path", key.name)));
        }
        values.remove(pos);
    }
    for col in &table.columns {
        let kept = col.system || col.name == "_owner_id";
        if col.name != key.name && !kept && !values.iter().any(|(c, _)| *c == col.name) {
            values.push((col.name.clone(), Value::Null));
        }
    }
    Ok(values)
}

/// `INSERT … [ON CONFLICT …] RETURNING <columns>`. An upsert updates the row it meets (within
/// `update_scope`: a merge never takes over another owner's row) or keeps it.
pub(super) fn insert(
    dialect: Dialect,
    table: &Table,
    caller: &Caller,
    values: Vec<(String, Value)>,
    upsert: Option<(&Upsert, &Scope)>,
    columns: &[&Column],
) -> Result<Stmt, ApiError> {
    let names: Vec<String> = values.iter().map(|(c, _)| c.clone()).collect();
    // A plain table's row that names no column is all defaults: it gives no key to meet a
    // row by, so it is a plain insert (SQLite takes no upsert after `DEFAULT VALUES`).
    let upsert = upsert.filter(|_| !(names.is_empty() && table.collection.is_none()));
    let mut b = if table.collection.is_some() {
        insert_values(dialect, table, caller, values)
    } else {
        plain_insert(dialect, table, values)
    };
    if let Some((upsert, update_scope)) = upsert {
        on_conflict(&mut b, table, &names, upsert, update_scope)?;
    }
    b.push(" RETURNING ");
    compile::select_list(&mut b, columns.iter().copied());
    Ok(b.finish())
}

fn conflict_columns<'t>(table: &'t Table, upsert: &Upsert) -> Result<Vec<&'t Column>, ApiError> {
    upsert.on_conflict.iter().map(|n| compile::column(table, n)).collect()
}

/// The columns a merge sets on the row it meets: those given, but the conflict columns and the
/// system fields.
fn merged_columns<'n>(names: &'n [String], conflict: &[&Column]) -> Vec<&'n String> {
    names.iter().filter(|n| !conflict.iter().any(|c| &c.name == *n) && !names::is_system_column(n)).collect()
}

/// Whether an upsert of the columns `names` updates the row it meets (`DO UPDATE`), rather
/// than leaving it (`DO NOTHING`).
/// A merge always updates, even a body of the conflict columns alone, so that the row met is
/// answered as PostgREST answers it.
pub(super) fn merge_updates(table: &Table, upsert: &Upsert) -> Result<bool, ApiError> {
    conflict_columns(table, upsert)?;
    Ok(upsert.resolution == Resolution::Merge)
}

/// ` ON CONFLICT (…) DO UPDATE SET … | DO NOTHING`.
fn on_conflict(
    b: &mut SqlBuilder,
    table: &Table,
    names: &[String],
    upsert: &Upsert,
    update_scope: &Scope,
) -> Result<(), ApiError> {
    let conflict = conflict_columns(table, upsert)?;
    b.push(" ON CONFLICT (").ident_list(conflict.iter().map(|c| c.name.as_str())).push(")");
    let collection = table.collection.is_some();
    if collection && !conflict.iter().any(|c| c.name == "_id") {
        // Unique indexes of collections cover live records only.
        b.push(" WHERE \"_deleted_at\" IS NULL");
    }
    if !merge_updates(table, upsert)? {
        b.push(" DO NOTHING");
        return Ok(());
    }
    let mut set: Vec<&str> = merged_columns(names, &conflict).into_iter().map(String::as_str).collect();
    if set.is_empty() && !collection {
        // Nothing but the key: it is set to itself (the proposed key equals the one met),
        // which changes nothing and returns the row.
        set.extend(conflict.first().map(|c| c.name.as_str()));
    }
    b.push(" DO UPDATE SET ");
    let mut first = true;
    if collection {
        b.push("\"_updated_at\" = EXCLUDED.\"_updated_at\"");
        first = false;
    }
    for name in set {
        if !first {
            b.push(", ");
        }
        first = false;
        b.ident(name).push(" = EXCLUDED.").ident(name);
    }
    if let Scope::OwnedBy(owner) = update_scope {
        b.push(" WHERE ").qualified(&table.name, "_owner_id").push(" = ").param(owner.clone().into());
    }
    Ok(())
}

/// `INSERT INTO t (…) VALUES (…)` of a table that is not a collection (`DEFAULT VALUES` when
/// the body names no column).
fn plain_insert(dialect: Dialect, table: &Table, values: Vec<(String, Value)>) -> SqlBuilder {
    let mut b = SqlBuilder::new(dialect);
    b.push("INSERT INTO ").ident(&table.name);
    if values.is_empty() {
        b.push(" DEFAULT VALUES");
        return b;
    }
    b.push(" (").ident_list(values.iter().map(|(c, _)| c.as_str())).push(") VALUES (");
    for (i, (column, value)) in values.into_iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        match table.column(&column) {
            Some(col) => compile::bind(&mut b, col, value),
            None => b.param(value),
        };
    }
    b.push(")");
    b
}

/// `UPDATE t SET … WHERE … RETURNING <columns>` of the rows `target` picks within `scope`.
pub(super) fn update(
    dialect: Dialect,
    table: &Table,
    values: Vec<(String, Value)>,
    target: &Target,
    scope: &Scope,
    deleted: Deleted,
    columns: &[&Column],
) -> Result<Stmt, ApiError> {
    let mut b = SqlBuilder::new(dialect);
    b.push("UPDATE ").ident(&table.name).push(" SET ");
    let mut first = true;
    if table.collection.is_some() {
        b.push("\"_updated_at\" = ").param(now_ms().into());
        first = false;
    }
    for (column, value) in values {
        if !first {
            b.push(", ");
        }
        first = false;
        b.ident(&column).push(" = ");
        match table.column(&column) {
            Some(col) => compile::bind(&mut b, col, value),
            None => b.param(value),
        };
    }
    b.push(" WHERE 1 = 1");
    within(&mut b, table, scope, deleted);
    targeted(&mut b, table, target)?;
    b.push(" RETURNING ");
    compile::select_list(&mut b, columns.iter().copied());
    Ok(b.finish())
}

/// The delete of one row by key: a collection's soft delete (`_deleted_at` set, the row
/// returned), or a delete for good (a collection's under the admin's record endpoints, and
/// every row of another table).
pub(super) fn delete(
    dialect: Dialect,
    table: &Table,
    key_value: &Value,
    scope: &Scope,
    deleted: Deleted,
    columns: &[&Column],
) -> Result<Stmt, ApiError> {
    let key = key(table)?;
    let mut b = SqlBuilder::new(dialect);
    let soft = table.collection.is_some() && deleted == Deleted::Hidden;
    if soft {
        let now = now_ms();
        b.push("UPDATE ").ident(&table.name).push(" SET \"_deleted_at\" = ").param(now.into());
        b.push(", \"_updated_at\" = ").param(now.into());
    } else {
        b.push("DELETE FROM ").ident(&table.name);
    }
    b.push(" WHERE ").ident(&key.name).push(" = ");
    compile::bind(&mut b, key, key_value.clone());
    within(&mut b, table, scope, deleted);
    if soft {
        b.push(" RETURNING ");
        compile::select_list(&mut b, columns.iter().copied());
    }
    Ok(b.finish().must_change())
}

/// `DELETE FROM t WHERE … RETURNING <columns>`: every row `target` picks within `scope`, of a
/// table without a key to delete them by one at a time.
pub(super) fn delete_all(
    dialect: Dialect,
    table: &Table,
    target: &Target,
    scope: &Scope,
    columns: &[&Column],
) -> Result<Stmt, ApiError> {
    let mut b = SqlBuilder::new(dialect);
    b.push("DELETE FROM ").ident(&table.name).push(" WHERE 1 = 1");
    within(&mut b, table, scope, Deleted::Shown);
    targeted(&mut b, table, target)?;
    b.push(" RETURNING ");
    compile::select_list(&mut b, columns.iter().copied());
    Ok(b.finish())
}

/// `UPDATE … SET "_deleted_at" = NULL … RETURNING` the restored record.
pub(super) fn restore(dialect: Dialect, table: &Table, id: &str, scope: &Scope, columns: &[&Column]) -> Stmt {
    let mut b = SqlBuilder::new(dialect);
    b.push("UPDATE ").ident(&table.name).push(" SET \"_deleted_at\" = NULL, \"_updated_at\" = ");
    b.param(now_ms().into()).push(" WHERE \"_id\" = ").param(id.into());
    b.push(" AND \"_deleted_at\" IS NOT NULL");
    within(&mut b, table, scope, Deleted::Shown);
    b.push(" RETURNING ");
    compile::select_list(&mut b, columns.iter().copied());
    b.finish().must_change()
}
