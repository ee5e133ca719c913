//! Record operations of the collections surface: create, get, update, soft delete, restore,
//! hard delete, list and count. Access rules are applied here, through [`access::check`], so
//! every surface and every admin path gets the same behaviour.

use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde_json::value::RawValue;

use super::access::{self, Caller, Rules, Scope};
use super::catalog::{Column, ColumnType, Table};
use super::query::{Query, SortKey, compile};
use super::read::{Order, Paging, Read, ReadPlan, with_tiebreaker};
use super::sql::SqlBuilder;
use super::write::{Mutation, WriteOptions, Written};
use super::{Dialect, Rows, Store, Value, names, search};
use crate::error::ApiError;
use crate::limits::{MAX_COLUMNS, MAX_NEW_FIELDS_PER_WRITE, MAX_RELATION_IDS};
use crate::util::now_ms;

/// Result rows with the names and types of their columns, serialised straight to JSON
/// without building an intermediate document.
#[derive(Debug)]
pub struct Records {
    pub columns: Vec<(String, ColumnType)>,
    pub rows: Vec<Vec<Value>>,
}

impl Records {
    pub(super) fn new(columns: &[&Column], rows: Rows) -> Self {
        Records { columns: columns.iter().map(|c| (c.name.clone(), c.ty)).collect(), rows: rows.rows }
    }

    pub fn first(&self) -> Option<RecordRef<'_>> {
        self.rows.first().map(|values| RecordRef { columns: &self.columns, values })
    }

    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> {
        self.rows.iter().map(|values| RecordRef { columns: &self.columns, values })
    }
}

/// One record, as a JSON object.
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    columns: &'a [(String, ColumnType)],
    values: &'a [Value],
}

impl Serialize for RecordRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.columns.len()))?;
        for ((name, ty), value) in self.columns.iter().zip(self.values) {
            map.serialize_entry(name, &Typed(*ty, value))?;
        }
        map.end()
    }
}

/// A stored value shown as its column type says (SQLite keeps booleans as 0/1 and JSON as
/// text).
pub(super) struct Typed<'a>(pub ColumnType, pub &'a Value);

impl Serialize for Typed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.0, self.1) {
            (ColumnType::Boolean, Value::Int(i)) => s.serialize_bool(*i != 0),
            (ColumnType::Json, Value::Text(text)) => match serde_json::from_str::<&RawValue>(text) {
                Ok(raw) => raw.serialize(s),
                Err(_) => s.serialize_str(text),
            },
            (_, value) => value.serialize(s),
        }
    }
}

/// A page of a list: `{"items", "total", "page", "limit", "next_cursor"}`.
pub struct ListPage {
    pub records: Records,
    pub total: i64,
    pub page: u32,
    pub limit: u32,
    pub next_cursor: Option<String>,
}

impl Serialize for ListPage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Items<'a>(&'a Records);
        impl Serialize for Items<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.rows.len()))?;
                for record in self.0.iter() {
                    seq.serialize_element(&record)?;
                }
                seq.end()
            }
        }
        let mut st = s.serialize_struct("ListPage", 5)?;
        st.serialize_field("items", &Items(&self.records))?;
        st.serialize_field("total", &self.total)?;
        st.serialize_field("page", &self.page)?;
        st.serialize_field("limit", &self.limit)?;
        st.serialize_field("next_cursor", &self.next_cursor)?;
        st.end()
    }
}

pub use super::read::Deleted;

impl Store {
    /// The collection `name`: 400 for a name that can never be one, 404 when it does not exist.
    pub async fn collection(&self, name: &str) -> Result<Arc<Table>, ApiError> {
        names::check_collection_name(name)?;
        match self.catalog.lookup(name).await? {
            Some(table) if table.collection.is_some() => Ok(table),
            _ => Err(ApiError::not_found(format!("collection '{name}' not found"))),
        }
    }

    /// Creates a record. A missing collection is created first when `auto_create` allows it
    /// and the caller passes the default create rule.
    pub async fn create_record(
        &self,
        name: &str,
        caller: &Caller,
        body: &serde_json::Value,
        auto_create: bool,
    ) -> Result<Records, ApiError> {
        let fields = body_object(body)?.clone();
        let table = self.writable_collection(name, auto_create).await?;
        let options = WriteOptions::collection(auto_create);
        only_record(self.apply_to(name, table, caller, vec![Mutation::create(fields)], options).await?)
    }

    /// Runs one mutation; answers the record it leaves.
    async fn apply_one(
        &self,
        table: Arc<Table>,
        caller: &Caller,
        mutation: Mutation,
        options: WriteOptions,
    ) -> Result<Records, ApiError> {
        only_record(self.apply(table, caller, vec![mutation], options).await?)
    }

    /// The collection records are created in; `None` when it is missing and `auto_create`
    /// allows the writes to create it (see [`Store::apply_to`]). The write pipeline checks
    /// the create rule, naming the mutation it refuses in a bulk or batch.
    pub(super) async fn writable_collection(
        &self,
        name: &str,
        auto_create: bool,
    ) -> Result<Option<Arc<Table>>, ApiError> {
        match self.collection(name).await {
            Ok(table) => Ok(Some(table)),
            // A valid name (`collection` refuses others with 400).
            Err(ApiError::NotFound(_)) if auto_create => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Runs `mutations` on the collection [`Store::writable_collection`] answered: `table`,
    /// or when it is `None` the collection `name`, created by the same transaction.
    pub(super) async fn apply_to(
        &self,
        name: &str,
        table: Option<Arc<Table>>,
        caller: &Caller,
        mutations: Vec<Mutation>,
        options: WriteOptions,
    ) -> Result<Vec<Written>, ApiError> {
        match table {
            Some(table) => self.apply(table, caller, mutations, options).await,
            None => self.apply_creating(name, caller, mutations, options).await,
        }
    }

    /// One record. 404 when it does not exist, is deleted (unless shown) or may not be read.
    pub async fn get_record(
        &self,
        name: &str,
        id: &str,
        caller: &Caller,
        deleted: Deleted,
        fields: Option<&[String]>,
    ) -> Result<Records, ApiError> {
        let table = self.collection(name).await?;
        let scope = access::scope(&table, &rules(&table).read, caller)?;
        let out = output_columns(&table, fields, deleted)?;
        let mut plan = ReadPlan::of(&table, scope, deleted, out.clone());
        plan.key = Some(id);
        let read = self.read(&plan).await?;
        if read.rows.rows.is_empty() {
            return Err(record_not_found(name, id));
        }
        Ok(Records::new(&out, read.rows))
    }

    /// `Ok` when record `id` of `name` is within what `caller` may update (what attaching a
    /// file to it needs); 404 when it is not.
    pub async fn check_may_update(&self, name: &str, id: &str, caller: &Caller) -> Result<(), ApiError> {
        let table = self.collection(name).await?;
        let scope = access::write_scope(&table, &rules(&table).update, caller)?;
        let key = output_columns(&table, Some(&["_id".to_owned()]), Deleted::Hidden)?;
        let mut plan = ReadPlan::of(&table, scope, Deleted::Hidden, key);
        plan.key = Some(id);
        if self.read(&plan).await?.rows.rows.is_empty() {
            return Err(record_not_found(name, id));
        }
        Ok(())
    }

    /// Changes the given fields of a record.
    pub async fn update_record(
        &self,
        name: &str,
        id: &str,
        caller: &Caller,
        body: &serde_json::Value,
        deleted: Deleted,
        auto_create: bool,
    ) -> Result<Records, ApiError> {
        let fields = body_object(body)?.clone();
        let table = self.collection(name).await?;
        let options = WriteOptions { deleted, ..WriteOptions::collection(auto_create) };
        self.apply_one(table, caller, Mutation::update(id, fields), options).await
    }

    /// Soft-deletes a record (sets `_deleted_at`), or removes it for good when `hard`.
    pub async fn delete_record(&self, name: &str, id: &str, caller: &Caller, hard: bool) -> Result<(), ApiError> {
        let table = self.collection(name).await?;
        let deleted = if hard { Deleted::Shown } else { Deleted::Hidden };
        let options = WriteOptions { deleted, ..WriteOptions::collection(false) };
        self.apply(table, caller, vec![Mutation::delete(id)], options).await?;
        Ok(())
    }

    /// Undoes a soft delete. Needs the update rule.
    pub async fn restore_record(&self, name: &str, id: &str, caller: &Caller) -> Result<Records, ApiError> {
        let table = self.collection(name).await?;
        self.apply_one(table, caller, Mutation::Restore { id: id.to_owned() }, WriteOptions::collection(false)).await
    }

    /// A page of records matching `query`, with the total count.
    pub async fn list_records(&self, name: &str, caller: &Caller, query: &Query) -> Result<ListPage, ApiError> {
        let (table, scope, deleted) = self.list_target(name, caller, query).await?;
        let (mut out, show_id) = list_columns(&table, query, deleted)?;
        let plan = self.list_plan(&table, scope, deleted, query, out.clone()).await?;
        let limit = query.limit();
        let Read { mut rows, total } = self.read(&plan).await?;
        let more = rows.rows.len() > limit as usize;
        rows.rows.truncate(limit as usize);
        let id_index = out.iter().position(|c| c.name == "_id").unwrap_or(0);
        // Ranked search results (no sort) are paged with `page`, never with a cursor.
        let ranked = query.search.is_some() && query.sort.is_empty();
        let next_cursor = if more && !ranked {
            rows.rows.last().and_then(|r| r[id_index].as_text()).map(str::to_owned)
        } else {
            None
        };
        if !show_id {
            for row in &mut rows.rows {
                row.pop();
            }
            out.pop();
        }
        let total = total.unwrap_or(0);
        Ok(ListPage { records: Records::new(&out, rows), total, page: query.page(), limit, next_cursor })
    }

    /// The plan the database chooses for a list page (`EXPLAIN`), line by line: to check that
    /// the common list shapes are served by an index.
    pub async fn explain_list(&self, name: &str, caller: &Caller, query: &Query) -> Result<Vec<String>, ApiError> {
        let (table, scope, deleted) = self.list_target(name, caller, query).await?;
        let (out, _) = list_columns(&table, query, deleted)?;
        let plan = self.list_plan(&table, scope, deleted, query, out).await?;
        self.explain(&plan).await
    }

    /// The collection a list reads, the caller's scope in it and whether deleted records show;
    /// its search index is built first when the list searches.
    async fn list_target(
        &self,
        name: &str,
        caller: &Caller,
        query: &Query,
    ) -> Result<(Arc<Table>, Scope, Deleted), ApiError> {
        let table = self.collection(name).await?;
        // Search results come best first unless a sort is given.
        if query.search.is_some() && query.sort.is_empty() && query.after.is_some() {
            return Err(ApiError::bad_request(
                "'after' needs a sort when searching (ranked results are paged with 'page')",
            ));
        }
        let scope = access::scope(&table, &rules(&table).read, caller)?;
        let table = self.searchable(table, query).await?;
        let deleted = if query.include_deleted { Deleted::Shown } else { Deleted::Hidden };
        Ok((table, scope, deleted))
    }

    /// A list page's plan: sorted with the tiebreaker (or by rank when searching), one row
    /// more than the page to tell whether another follows, counted.
    async fn list_plan<'t>(
        &self,
        table: &'t Table,
        scope: Scope,
        deleted: Deleted,
        query: &'t Query,
        columns: Vec<&'t Column>,
    ) -> Result<ReadPlan<'t>, ApiError> {
        let sort = with_tiebreaker(table, &query.sort);
        let limit = query.limit();
        let mut plan = ReadPlan::of(table, scope, deleted, columns);
        plan.query = query;
        plan.count = true;
        plan.paging = match &query.after {
            Some(after) => Paging::After { limit: limit + 1, cursor: self.cursor_values(&plan, &sort, after).await? },
            None => Paging::Offset { limit: limit + 1, offset: query.offset() },
        };
        plan.order = match query.search.as_ref().filter(|_| query.sort.is_empty()) {
            Some(search) => Order::Rank(search),
            None => Order::Keys(sort),
        };
        Ok(plan)
    }

    /// How many records match `query`'s filters.
    pub async fn count_records(&self, name: &str, caller: &Caller, query: &Query) -> Result<i64, ApiError> {
        let table = self.collection(name).await?;
        let scope = access::scope(&table, &rules(&table).read, caller)?;
        let table = self.searchable(table, query).await?;
        let deleted = if query.include_deleted { Deleted::Shown } else { Deleted::Hidden };
        let mut plan = ReadPlan::of(&table, scope, deleted, Vec::new());
        plan.query = query;
        plan.count = true;
        plan.paging = Paging::CountOnly;
        Ok(self.read(&plan).await?.total.unwrap_or(0))
    }

    /// `table`, with its search index built first when `query` searches and the index is
    /// missing (the collection's first search) or does not cover the current text fields
    /// (fields changed by another instance). Collections that are never searched pay nothing
    /// for search on their writes.
    pub(super) async fn searchable(&self, table: Arc<Table>, query: &Query) -> Result<Arc<Table>, ApiError> {
        let Some(meta) = &table.collection else { return Ok(table) };
        if !query.uses_search() {
            return Ok(table);
        }
        let fields = search::search_fields(&table);
        if meta.search_index.as_ref() == Some(&fields) {
            return Ok(table);
        }
        self.rebuild_search_index(&table.name, &fields).await
    }

    /// Builds the search index of the collection `name` over `fields` anew.
    pub(super) async fn rebuild_search_index(&self, name: &str, fields: &[String]) -> Result<Arc<Table>, ApiError> {
        self.db.write_many(search::rebuild_stmts(self.db.dialect(), name, fields)).await.map_err(|err| match err {
            super::DbError::InStatement { source, .. } => ApiError::from(*source),
            other => other.into(),
        })?;
        self.catalog.refresh(name).await?.ok_or_else(|| ApiError::not_found(format!("collection '{name}' not found")))
    }

    /// The sort values of the cursor record, which must be visible within `list`'s scope.
    async fn cursor_values(&self, list: &ReadPlan<'_>, sort: &[SortKey], after: &str) -> Result<Vec<Value>, ApiError> {
        let columns = sort.iter().map(|k| compile::column(list.table, &k.column)).collect::<Result<Vec<_>, _>>()?;
        let mut plan = ReadPlan::of(list.table, list.scope.clone(), list.deleted, columns);
        plan.key = Some(after);
        let read = self.read(&plan).await?;
        read.rows
            .rows
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::bad_request("invalid cursor: 'after' must be the id of a record in this list"))
    }
}

/// `INSERT INTO … VALUES (…)` of a new record with its system fields, without `RETURNING`.
pub(super) fn insert_values(
    dialect: Dialect,
    table: &Table,
    caller: &Caller,
    values: Vec<(String, Value)>,
) -> SqlBuilder {
    let now = now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let mut columns: Vec<&str> = vec!["_id", "_created_at", "_updated_at", "_owner_id"];
    columns.extend(values.iter().map(|(c, _)| c.as_str()));
    let mut b = SqlBuilder::new(dialect);
    b.push("INSERT INTO ").ident(&table.name).push(" (").ident_list(columns).push(") VALUES (");
    b.param(id.into()).push(", ").param(now.into()).push(", ").param(now.into()).push(", ");
    b.param(caller.user_id().map(str::to_owned).into());
    // Through the column's conversion: a column added with plain SQL may be of a type the
    // driver does not take as sent (`date`, `uuid` on PostgreSQL).
    for (name, value) in values {
        b.push(", ");
        match table.column(&name) {
            Some(col) => compile::bind(&mut b, col, value),
            None => b.param(value),
        };
    }
    b.push(")");
    b
}

/// The columns a list reads: the projection, plus `_id` (which the cursor needs) when the
/// projection leaves it out; and whether it is shown.
fn list_columns<'t>(table: &'t Table, query: &Query, deleted: Deleted) -> Result<(Vec<&'t Column>, bool), ApiError> {
    let mut out = output_columns(table, query.fields.as_deref(), deleted)?;
    let show_id = out.iter().any(|c| c.name == "_id");
    if !show_id {
        out.push(compile::column(table, "_id")?);
    }
    Ok((out, show_id))
}

/// The record the one write of `written` leaves.
fn only_record(written: Vec<Written>) -> Result<Records, ApiError> {
    let records = written.into_iter().next().map(|w| w.records);
    records.filter(|r| !r.rows.is_empty()).ok_or_else(|| ApiError::internal("a write answered no record"))
}

pub(super) fn rules(table: &Table) -> &Rules {
    table.access_rules()
}

/// A name for a new field of `table`: a valid one, unlike every existing field's even in
/// case (SQLite's names ignore ASCII case: `Title` and `title` are one column there).
pub(super) fn check_new_field_name(table: &Table, name: &str) -> Result<(), ApiError> {
    names::check_field_name(name)?;
    match table.column_ignoring_case(name) {
        Some(existing) => Err(ApiError::bad_field(
            name,
            format!("field '{name}' clashes with the existing field '{}'", existing.name),
        )),
        None => Ok(()),
    }
}

/// Adds to `missing` the fields of `fields` that `table` has no column for (typed from their
/// values), or refuses them when `auto_create` is off.
pub(super) fn missing_columns(
    table: &Table,
    fields: &serde_json::Map<String, serde_json::Value>,
    auto_create: bool,
    missing: &mut Vec<(String, ColumnType)>,
) -> Result<(), ApiError> {
    for (name, value) in fields {
        if names::is_system_column(name) || table.column(name).is_some() || missing.iter().any(|(m, _)| m == name) {
            continue;
        }
        if !auto_create {
            // With PostgREST's code for a body column the table lacks, as for any table.
            let shown: String = name.chars().take(64).collect();
            return Err(ApiError::BadRequest {
                message: format!("unknown field '{shown}' in '{}'", table.name),
                field: Some(name.clone()),
                code: Some(crate::error::codes::UNKNOWN_BODY_COLUMN),
            });
        }
        check_new_field_name(table, name)?;
        if let Some((other, _)) = missing.iter().find(|(m, _)| m.eq_ignore_ascii_case(name)) {
            return Err(ApiError::bad_field(name, format!("fields '{other}' and '{name}' differ only in case")));
        }
        missing.push((name.clone(), ColumnType::infer(value)));
        check_new_field_count(table, missing.len())?;
    }
    Ok(())
}

/// Refuses a write that would add more than [`MAX_NEW_FIELDS_PER_WRITE`] fields, or take
/// `table` past [`MAX_COLUMNS`]: every new field is a schema change that holds the writer.
pub(super) fn check_new_field_count(table: &Table, new_fields: usize) -> Result<(), ApiError> {
    if new_fields > MAX_NEW_FIELDS_PER_WRITE {
        return Err(ApiError::bad_request(format!(
            "the write adds more than {MAX_NEW_FIELDS_PER_WRITE} new fields (MAX_NEW_FIELDS_PER_WRITE)"
        )));
    }
    if table.columns.len() + new_fields > MAX_COLUMNS {
        return Err(ApiError::bad_request(format!(
            "'{}' would have more than {MAX_COLUMNS} fields (MAX_COLUMNS)",
            table.name
        )));
    }
    Ok(())
}

/// A collection's field rules for a replacement (`PUT`): a whole record, so every required
/// field must be given, as on create.
pub(super) fn check_replacement(
    table: &Table,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    match &table.collection {
        Some(meta) => super::validation::check(&meta.field_rules, fields, true),
        None => Ok(()),
    }
}

/// A collection's own rules for a write: its field validation rules, and at most
/// [`MAX_RELATION_IDS`] ids in a `many` relation field (every reader of the record would
/// otherwise pay for them in each expand).
pub(super) fn check_collection_rules(
    table: &Table,
    fields: &serde_json::Map<String, serde_json::Value>,
    creating: bool,
) -> Result<(), ApiError> {
    let Some(meta) = &table.collection else { return Ok(()) };
    super::validation::check(&meta.field_rules, fields, creating)?;
    for field in meta.relations.iter().filter(|r| r.many).map(|r| &r.field) {
        // A `many` relation holds an array of record ids (or nothing).
        let ids = match fields.get(field) {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::Array(ids)) if ids.iter().all(serde_json::Value::is_string) => ids,
            Some(_) => {
                return Err(ApiError::bad_field(field, format!("'{field}' holds a relation: an array of record ids")));
            }
        };
        if ids.len() > MAX_RELATION_IDS {
            return Err(ApiError::bad_field(
                field,
                format!(
                    "'{field}' holds {} ids; a relation holds at most {MAX_RELATION_IDS} (MAX_RELATION_IDS)",
                    ids.len()
                ),
            ));
        }
    }
    Ok(())
}

/// The body's fields typed for their columns; system fields are ignored. The collection's own
/// rules ([`check_collection_rules`]) must have been checked.
pub(super) fn typed_fields(
    table: &Table,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(String, Value)>, ApiError> {
    let mut values = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        if names::is_system_column(name) {
            continue;
        }
        let col = table.column(name).ok_or_else(|| ApiError::bad_field(name, format!("unknown field '{name}'")))?;
        values.push((col.name.clone(), json_to_value(col, value)?));
    }
    Ok(values)
}

pub(super) fn body_object(body: &serde_json::Value) -> Result<&serde_json::Map<String, serde_json::Value>, ApiError> {
    body.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))
}

/// The columns a read shows: the projection, or all but `_deleted_at` unless deleted
/// records are shown.
pub(super) fn output_columns<'t>(
    table: &'t Table,
    fields: Option<&[String]>,
    deleted: Deleted,
) -> Result<Vec<&'t Column>, ApiError> {
    match fields {
        Some(fields) => fields.iter().map(|f| compile::column(table, f)).collect(),
        None => Ok(table.columns.iter().filter(|c| deleted == Deleted::Shown || c.name != "_deleted_at").collect()),
    }
}

/// The bound below which an integral number written as `2.0` or `1e3` fits an integer field
/// (2^53: every integer below it is exact as a float).
const MAX_EXACT_FLOAT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// A JSON value from a request body, typed for its column; a mismatch is a 400 naming the
/// field.
pub fn json_to_value(col: &Column, value: &serde_json::Value) -> Result<Value, ApiError> {
    use serde_json::Value as J;
    let mismatch = || {
        let got = match value {
            J::Null => "null",
            J::Bool(_) => "a boolean",
            J::Number(_) => "a number",
            J::String(_) => "a string",
            J::Array(_) => "an array",
            J::Object(_) => "an object",
        };
        ApiError::BadRequest {
            message: format!("field '{}' expects {}, got {got}", col.name, col.ty.name()),
            field: Some(col.name.clone()),
            code: Some(crate::error::codes::INVALID_VALUE),
        }
    };
    let holds_nul = || ApiError::bad_field(&col.name, format!("field '{}' holds a NUL character", col.name));
    Ok(match (col.ty, value) {
        (_, J::Null) => Value::Null,
        // PostgreSQL's text cannot hold NUL; refused on both backends alike.
        (ColumnType::Text, J::String(s)) if s.contains('\0') => return Err(holds_nul()),
        (ColumnType::Text, J::String(s)) => compile::text_value(col, s)?,
        (ColumnType::Integer, J::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < MAX_EXACT_FLOAT_INTEGER => Value::Int(f as i64),
            // Past 2^53 a number written with a fraction or an exponent may already have been
            // rounded to another integer: only its plain integer spelling is exact.
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                return Err(ApiError::BadRequest {
                    message: format!(
                        "field '{}' expects an integer: {f:e} written with a fraction or an exponent is exact only below 2^53; write it as a plain integer",
                        col.name
                    ),
                    field: Some(col.name.clone()),
                    code: Some(crate::error::codes::INVALID_VALUE),
                });
            }
            _ => return Err(mismatch()),
        },
        // Zero has one sign: SQLite keeps no negative zero, PostgreSQL would.
        (ColumnType::Real, J::Number(n)) => match n.as_f64().ok_or_else(mismatch)? {
            0.0 => Value::Real(0.0),
            f => Value::Real(f),
        },
        (ColumnType::Boolean, J::Bool(b)) => Value::Bool(*b),
        // Nor can PostgreSQL's jsonb hold `\u0000`, in a string or a key.
        (ColumnType::Json, v) if json_holds_nul(v) => return Err(holds_nul()),
        (ColumnType::Json, v) => Value::Json(v.clone()),
        _ => return Err(mismatch()),
    })
}

/// Whether a JSON value holds NUL, in a string or a key, however deep.
pub fn json_holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_holds_nul(v)),
        _ => false,
    }
}

pub(super) fn record_not_found(collection: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("record '{}' not found in '{collection}'", short(id)))
}

pub(super) fn short(id: &str) -> String {
    id.chars().take(64).collect()
}
