//! The tables surface's operations (PostgREST dialect) over every exposed table: Ferrobase
//! collections and tables made with plain SQL. Requests arrive as the shared
//! [`TableQuery`](super::query::TableQuery); filters, sort and paging compile through the one
//! query compiler, and access goes through [`access::check`] as on the collections surface.
//!
//! A collection seen here keeps its behaviour: `_id` is its key, soft-deleted records are
//! hidden, inserts set the system fields and apply the field validation rules, updates bump
//! `_updated_at`, and deletes are the same soft delete (with the relations' `on_delete`).
//! Another table is addressed by its single-column primary key, and its rows are deleted for
//! good.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::{Map, Value as Json};

use super::access::{self, Caller};
use super::catalog::{Column, ColumnType, Table};
use super::query::parse::TABLE_MAX_LIMIT;
use super::query::{Query, SelectItem, compile};
use super::read::{Deleted, Order, Paging, ReadPlan, with_tiebreaker};
use super::records::{self, Typed};
use super::sql::SqlBuilder;
use super::write::{Affected, Mutation, Upsert, WriteOptions};
use super::{Store, Value};
use crate::error::{ApiError, codes};

/// How an insert treats a row whose unique key already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// `Prefer: resolution=merge-duplicates`: update the existing row.
    Merge,
    /// `Prefer: resolution=ignore-duplicates`: keep the existing row, skip the new one.
    Ignore,
}

/// Rows as the tables surface answers them: the selected columns under their answer names,
/// then the embedded relations.
#[derive(Debug, Default)]
pub struct TableRows {
    names: Vec<(String, ColumnType)>,
    rows: Vec<Vec<Value>>,
    /// Per embed: its answer name and one value per row.
    embeds: Vec<(String, Vec<Json>)>,
}

impl TableRows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Row `i` as a JSON object.
    fn row(&self, i: usize) -> impl Serialize + '_ {
        RowRef { rows: self, i }
    }

    /// The row of an answer that must be exactly one row (an object, not an array): 406
    /// when there are none or several.
    pub fn single(&self) -> Result<impl Serialize + '_, ApiError> {
        if self.rows.len() != 1 {
            return Err(single_refused(self.rows.len()));
        }
        Ok(self.row(0))
    }

    /// The rows as CSV (RFC 4180, as PostgREST answers `Accept: text/csv`): a header of the
    /// answer names, then one line per row; null is an empty field, JSON (an embed, a json
    /// column) its JSON text.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header = self.names.iter().map(|(n, _)| n.as_str()).chain(self.embeds.iter().map(|(n, _)| n.as_str()));
        csv_line(&mut out, header.map(str::to_owned));
        for (i, values) in self.rows.iter().enumerate() {
            let columns = self
                .names
                .iter()
                .zip(values)
                .map(|((_, ty), value)| csv_text(serde_json::to_value(Typed(*ty, value)).unwrap_or(Json::Null)));
            let embeds = self.embeds.iter().map(|(_, values)| csv_text(values[i].clone()));
            csv_line(&mut out, columns.chain(embeds));
        }
        out
    }

    /// The value of the answer column `name` in row `i`, as text (for `Location`).
    pub fn text_of(&self, i: usize, name: &str) -> Option<String> {
        let j = self.names.iter().position(|(n, _)| n == name)?;
        match &self.rows[i][j] {
            Value::Text(s) => Some(s.clone()),
            Value::Int(n) => Some(n.to_string()),
            Value::Real(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

fn csv_text(value: Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(s) => s,
        other => other.to_string(),
    }
}

/// One CSV line: a field holding a comma, a quote or a line break is quoted, its quotes
/// doubled.
fn csv_line(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str("\r\n");
}

struct RowRef<'a> {
    rows: &'a TableRows,
    i: usize,
}

impl Serialize for RowRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let values = &self.rows.rows[self.i];
        let mut map = s.serialize_map(Some(self.rows.names.len() + self.rows.embeds.len()))?;
        for ((name, ty), value) in self.rows.names.iter().zip(values) {
            map.serialize_entry(name, &Typed(*ty, value))?;
        }
        for (name, values) in &self.rows.embeds {
            map.serialize_entry(name, &values[self.i])?;
        }
        map.end()
    }
}

impl Serialize for TableRows {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for i in 0..self.rows.len() {
            seq.serialize_element(&self.row(i))?;
        }
        seq.end()
    }
}

/// The columns a request reads: the shown ones first (with their answer names), then those
/// fetched only to join embeds; and the embeds themselves.
pub(super) struct Projection<'t> {
    pub columns: Vec<&'t Column>,
    pub names: Vec<String>,
    pub embeds: Vec<super::embed::EmbedPlan>,
}

impl Projection<'_> {
    /// The index of `column` among the fetched columns, fetching it when needed.
    fn fetch<'t>(columns: &mut Vec<&'t Column>, table: &'t Table, column: &str) -> Result<usize, ApiError> {
        if let Some(i) = columns.iter().position(|c| c.name == column) {
            return Ok(i);
        }
        columns.push(compile::column(table, column)?);
        Ok(columns.len() - 1)
    }
}

fn column_names(table: &Table) -> impl Iterator<Item = &str> {
    table.columns.iter().map(|c| c.name.as_str())
}

/// A page read: the rows and, when asked for, how many rows match in all.
pub struct TablePage {
    pub rows: TableRows,
    pub offset: u64,
    pub total: Option<i64>,
}

impl Store {
    /// A table of the tables surface: a collection or a table made with plain SQL (looked up
    /// in the database when the catalog does not know it yet). Its search index is built by
    /// the read or write that needs it, after the caller's access is checked.
    ///
    /// Endpoints are pluralised as the tables reference promises: when no table is named
    /// `name`, the one table whose English plural `name` is answers (`/tables/posts` reaches a
    /// table `post`). A table's own name always wins, so no name is ambiguous.
    pub async fn table(&self, name: &str) -> Result<Arc<Table>, ApiError> {
        let missing = || {
            let shown: String = name.chars().take(64).collect();
            ApiError::not_found(format!("table '{shown}' not found"))
        };
        if name.is_empty() || name.len() > 128 || super::names::is_internal_table(name) {
            return Err(missing());
        }
        if let Some(table) = self.catalog.lookup(name).await? {
            return Ok(table);
        }
        let mut found = Vec::new();
        for singular in super::names::singulars(name) {
            if super::names::is_internal_table(&singular) {
                continue;
            }
            if let Some(table) = self.catalog.lookup(&singular).await? {
                found.push(table);
            }
        }
        match found.len() {
            0 => Err(missing()),
            1 => Ok(found.remove(0)),
            _ => Err(ApiError::bad_request(format!(
                "'{name}' is the plural of several tables ({}): use the table's own name",
                found.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Runs `op` on the table `name` (see [`Store::table`]). Another program may have changed
    /// the table since the catalog last read it: added a column `op` names (refused as unknown
    /// before any statement ran), or dropped or renamed one the statement names (the database
    /// refused the statement, so nothing was written). Either way the table is read again
    /// and, if its columns changed, `op` runs once more on it; if it is gone, the answer is 404.
    pub async fn with_table<T, Op, Ran>(&self, name: &str, op: Op) -> Result<T, ApiError>
    where
        Op: Fn(Arc<Table>) -> Ran,
        Ran: Future<Output = Result<T, ApiError>>,
    {
        let table = self.table(name).await?;
        match op(table.clone()).await {
            Err(err)
                if matches!(err.code(), codes::UNDEFINED_COLUMN | codes::UNKNOWN_BODY_COLUMN | codes::TRY_AGAIN) =>
            {
                match self.catalog.refresh(&table.name).await? {
                    Some(fresh) if column_names(&fresh).ne(column_names(&table)) => op(fresh).await,
                    None => Err(ApiError::not_found(format!("table '{}' not found", table.name))),
                    _ => Err(err),
                }
            }
            done => done,
        }
    }

    /// Rows of `table` matching the query (`id` narrows it to one row by key).
    pub async fn table_select(
        &self,
        table: &Arc<Table>,
        caller: &Caller,
        query: &Query,
        id: Option<&str>,
        count: bool,
    ) -> Result<TablePage, ApiError> {
        let scope = access::scope(table, &table.access_rules().read, caller)?;
        let table = &*self.searchable(table.clone(), query).await?;
        let projection = self.projection(table, query.select.as_deref()).await?;
        let offset = query.offset.unwrap_or(0);
        let mut plan = ReadPlan::of(table, scope, Deleted::Hidden, projection.columns.clone());
        plan.query = query;
        plan.key = id;
        plan.order = Order::Keys(with_tiebreaker(table, &query.sort));
        plan.paging = Paging::Offset { limit: query.limit.unwrap_or(TABLE_MAX_LIMIT), offset };
        plan.count = count;
        let read = self.read(&plan).await?;
        let rows = self.finish_rows(table, caller, &projection, read.rows.rows).await?;
        Ok(TablePage { rows, offset, total: read.total })
    }

    /// The columns and embeds a `select=` asks for (every column when `None`).
    pub(super) async fn projection<'t>(
        &self,
        table: &'t Table,
        select: Option<&[SelectItem]>,
    ) -> Result<Projection<'t>, ApiError> {
        let (mut fetched, names) = select_columns(table, select)?;
        let mut embeds: Vec<super::embed::EmbedPlan> = Vec::new();
        for item in select.unwrap_or_default() {
            if let SelectItem::Embed { name, alias, hint, select } = item {
                // An embed may take a column's name (it then shows instead of the column, as
                // a relation field embedded under its own name does), not another embed's.
                let answer_name = alias.as_deref().unwrap_or(name);
                if embeds.iter().any(|e| e.answer_name == answer_name) {
                    return Err(duplicate_answer_name(answer_name));
                }
                embeds.push(self.embed_plan(table, name, alias.as_deref(), hint.as_deref(), select).await?);
            }
        }
        for plan in &mut embeds {
            plan.local_index = Projection::fetch(&mut fetched, table, &plan.local)?;
        }
        Ok(Projection { columns: fetched, names, embeds })
    }

    /// Rows as fetched for `projection` → the answer, with its embeds.
    async fn finish_rows(
        &self,
        table: &Table,
        caller: &Caller,
        projection: &Projection<'_>,
        mut rows: Vec<Vec<Value>>,
    ) -> Result<TableRows, ApiError> {
        let mut embeds = Vec::with_capacity(projection.embeds.len());
        let mut embedded = 0;
        for plan in &projection.embeds {
            embeds.push((plan.answer_name.clone(), self.embed(table, caller, plan, &rows, &mut embedded).await?));
        }
        // A relation field embedded under its own name (`*,author(*)`) shows the embed only.
        let shown: Vec<bool> =
            projection.names.iter().map(|name| !embeds.iter().any(|(embed, _)| embed == name)).collect();
        for row in &mut rows {
            row.truncate(shown.len());
            if shown.contains(&false) {
                let mut keep = shown.iter();
                row.retain(|_| *keep.next().unwrap_or(&true));
            }
        }
        let names = projection
            .names
            .iter()
            .zip(&projection.columns)
            .zip(&shown)
            .filter(|(_, shown)| **shown)
            .map(|((name, col), _)| (name.clone(), col.ty))
            .collect();
        Ok(TableRows { names, rows, embeds })
    }

    /// Runs the tables surface's writes through the write pipeline and answers the rows as
    /// `select=` shows them (the rows deleted, for a delete). `affected`: how many rows a
    /// filter may match (otherwise nothing is written).
    pub async fn table_write(
        &self,
        table: &Arc<Table>,
        caller: &Caller,
        query: &Query,
        mutations: Vec<Mutation>,
        affected: Affected,
    ) -> Result<TableRows, ApiError> {
        if table.virtual_table && mutations.iter().any(|m| !matches!(m, Mutation::Create { upsert: None, .. })) {
            return Err(ApiError::bad_input(
                codes::NOT_SUPPORTED,
                format!(
                    "'{}' is a SQLite virtual table: it can be read and inserted into, not updated, upserted or deleted from",
                    table.name
                ),
            ));
        }
        let table = if query.uses_search() {
            // The search index is built only for a caller the rules let write.
            super::write::check_access(table, caller, &mutations)?;
            self.searchable(table.clone(), query).await?
        } else {
            table.clone()
        };
        let projection = self.projection(&table, query.select.as_deref()).await?;
        let options = WriteOptions { indexed: mutations.len() > 1, affected, ..WriteOptions::collection(false) };
        let written = self.apply(table.clone(), caller, mutations, options).await?;
        let mut rows = Vec::new();
        for w in written {
            let positions: Vec<Option<usize>> = projection
                .columns
                .iter()
                .map(|c| w.records.columns.iter().position(|(name, _)| *name == c.name))
                .collect();
            for row in w.records.rows {
                rows.push(positions.iter().map(|p| p.map_or(Value::Null, |i| row[i].clone())).collect());
            }
        }
        self.finish_rows(&table, caller, &projection, rows).await
    }
}

/// An insert's rows as mutations: `columns=` keeps only the keys it names, and with a
/// `resolution` each becomes an upsert on `on_conflict` (the primary key by default).
pub fn insert_mutations(
    table: &Table,
    objects: &[&Map<String, Json>],
    columns: Option<&[String]>,
    on_conflict: Option<&[String]>,
    resolution: Option<Resolution>,
) -> Result<Vec<Mutation>, ApiError> {
    for name in columns.unwrap_or_default().iter().chain(on_conflict.unwrap_or_default()) {
        compile::column(table, name)?;
    }
    let upsert = match (resolution, on_conflict) {
        (None, _) => None,
        (Some(resolution), Some(names)) => Some(Upsert { on_conflict: names.to_vec(), resolution }),
        (Some(resolution), None) => {
            let key = table.key_column().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "'{}' has no single-column primary key: name the upsert's columns with on_conflict",
                    table.name
                ))
            })?;
            Some(Upsert { on_conflict: vec![key.name.clone()], resolution })
        }
    };
    if let Some(upsert) = &upsert
        && upsert.resolution == Resolution::Merge
    {
        refuse_repeated_keys(table, objects, &upsert.on_conflict)?;
    }
    Ok(objects
        .iter()
        .map(|object| {
            let fields = match columns {
                Some(columns) => {
                    object.iter().filter(|(k, _)| columns.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
                }
                None => (*object).clone(),
            };
            Mutation::Create { fields, upsert: upsert.clone() }
        })
        .collect())
}

/// A merge cannot change one row twice (PostgreSQL refuses such an `ON CONFLICT DO UPDATE`):
/// two items with the same key are a 400 that names them, where writing both in turn would
/// keep the last one silently. Keys are compared as their columns compare them (`1` and `1.0`,
/// or one UUID in two cases, are one key); an item whose key its column refuses is left to
/// its own write, which refuses it.
fn refuse_repeated_keys(table: &Table, objects: &[&Map<String, Json>], key: &[String]) -> Result<(), ApiError> {
    let key_of = |object: &Map<String, Json>| -> Option<String> {
        let mut spelled = Vec::with_capacity(key.len());
        for name in key {
            let col = compile::column(table, name).ok()?;
            let value = records::json_to_value(col, object.get(name).filter(|v| !v.is_null())?).ok()?;
            spelled.push(format!("{:?}", compile::comparable(col, value)));
        }
        Some(spelled.join("\0"))
    };
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (index, object) in objects.iter().enumerate() {
        let Some(values) = key_of(object) else { continue };
        if let Some(first) = seen.insert(values, index) {
            return Err(ApiError::bad_input(
                codes::CARDINALITY,
                format!(
                    "items {first} and {index} have the same {}: a merge cannot change one row twice",
                    key.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The columns of a `select=` (embeds aside) and their answer names; every column (but a
/// collection's `_deleted_at`) for `*` or no select.
pub(super) fn select_columns<'t>(
    table: &'t Table,
    select: Option<&[SelectItem]>,
) -> Result<(Vec<&'t Column>, Vec<String>), ApiError> {
    let mut answer = SelectedColumns::default();
    let all = [SelectItem::Star];
    for item in select.unwrap_or(&all) {
        match item {
            SelectItem::Star => {
                for col in table.columns.iter().filter(|c| table.collection.is_none() || c.name != "_deleted_at") {
                    answer.add(col, &col.name)?;
                }
            }
            SelectItem::Column { name, alias } => {
                let col = compile::column(table, name)?;
                // A collection's trash mark is not one of its columns on this surface.
                if table.collection.is_some() && col.name == "_deleted_at" {
                    return Err(compile::unknown_column(table, name));
                }
                answer.add(col, alias.as_deref().unwrap_or(&col.name))?;
            }
            SelectItem::Embed { .. } => {}
        }
    }
    Ok((answer.columns, answer.names))
}

/// The columns of a select with their answer names, each name once (a JSON object has each
/// key once).
#[derive(Default)]
struct SelectedColumns<'t> {
    columns: Vec<&'t Column>,
    names: Vec<String>,
    positions: HashMap<String, usize>,
}

impl<'t> SelectedColumns<'t> {
    /// Adds a column; the same column under the same name again (`*,title`, `*,*`) is shown
    /// once, another column under a name already given is a 400.
    fn add(&mut self, col: &'t Column, name: &str) -> Result<(), ApiError> {
        match self.positions.get(name) {
            Some(&i) if self.columns[i].name == col.name => Ok(()),
            Some(_) => Err(duplicate_answer_name(name)),
            None => {
                self.positions.insert(name.to_owned(), self.columns.len());
                self.columns.push(col);
                self.names.push(name.to_owned());
                Ok(())
            }
        }
    }
}

/// 400: two items of a select would answer under one name.
pub(super) fn duplicate_answer_name(name: &str) -> ApiError {
    let shown: String = name.chars().take(64).collect();
    ApiError::bad_request(format!("select gives two items the answer name '{shown}': alias one of them"))
}

/// ` AND key = id`, the id typed for the key column; 400 for a table without a single key.
pub(super) fn key_condition(b: &mut SqlBuilder, table: &Table, id: &str) -> Result<(), ApiError> {
    let key = table.key_column().ok_or_else(|| no_key(table))?;
    let value = compile::typed(key, id)?;
    b.push(" AND ").ident(&key.name).push(" = ");
    compile::bind(b, key, value);
    Ok(())
}

pub(super) fn no_key(table: &Table) -> ApiError {
    ApiError::bad_request(format!(
        "'{}' has no single-column primary key, so its rows cannot be addressed by id: use filters",
        table.name
    ))
}

pub(super) fn unknown_body_column(table: &Table, name: &str) -> ApiError {
    let shown: String = name.chars().take(64).collect();
    ApiError::BadRequest {
        message: format!("unknown column '{shown}' in '{}'", table.name),
        field: Some(name.to_owned()),
        code: Some(crate::error::codes::UNKNOWN_BODY_COLUMN),
    }
}

/// 400: a filter matched more rows than `Prefer: max-affected` allows; nothing was written.
pub fn too_many_affected(rows: usize, most: u64) -> ApiError {
    ApiError::bad_input(
        codes::MAX_AFFECTED,
        format!("the write would change {rows} rows; Prefer: max-affected={most} allows at most {most}"),
    )
}

/// 406 for `Accept: application/vnd.pgrst.object+json` when the answer is not one row.
pub fn single_refused(rows: usize) -> ApiError {
    ApiError::NotAcceptable(format!(
        "the result must be exactly one row for application/vnd.pgrst.object+json; it has {rows}"
    ))
}
