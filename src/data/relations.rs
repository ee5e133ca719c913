//! Relations: field F of collection A holds the id of a record of collection B (or, `many`, a
//! JSON array of ids). `expand=F` inlines the related records in one query per relation,
//! honouring B's read rule; deleting a B record applies `on_delete` to the A records that
//! point at it, in the same transaction.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::access::{self, Caller, Scope};
use super::catalog::{ColumnType, RelationField, Table};
use super::read::RelatedOrder;
use super::records::{Records, rules};
use super::sql::SqlBuilder;
use super::{Dialect, Rows, Stmt, Store, Value};
use crate::error::ApiError;
use crate::limits::MAX_RELATION_IDS;
use crate::util::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// Refuse to delete a record that is referenced (409).
    Restrict,
    /// Delete the referencing records too, and theirs in turn (see `MAX_CASCADE_DEPTH`).
    Cascade,
    /// Clear the reference (remove the id from a `many` array).
    SetNull,
}

impl OnDelete {
    fn name(self) -> &'static str {
        match self {
            OnDelete::Restrict => "restrict",
            OnDelete::Cascade => "cascade",
            OnDelete::SetNull => "set_null",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Relation {
    pub id: String,
    pub collection: String,
    pub field: String,
    pub target: String,
    pub many: bool,
    pub on_delete: OnDelete,
    pub created_at: i64,
}

/// What `POST /admin/relations` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRelation {
    pub collection: String,
    pub field: String,
    pub target: String,
    #[serde(default)]
    pub many: bool,
    pub on_delete: Option<OnDelete>,
}

impl Store {
    pub async fn list_relations(&self) -> Result<Vec<Relation>, ApiError> {
        let rows = self
            .db
            .read(self.db.stmt(
                "SELECT id, collection, field, target, many, on_delete, created_at FROM _fb_relations ORDER BY created_at, id",
                vec![],
            ))
            .await?;
        Ok(rows
            .rows
            .iter()
            .map(|r| Relation {
                id: r[0].text().unwrap_or_default(),
                collection: r[1].text().unwrap_or_default(),
                field: r[2].text().unwrap_or_default(),
                target: r[3].text().unwrap_or_default(),
                many: r[4].as_bool(),
                on_delete: match r[5].as_text() {
                    Some("cascade") => OnDelete::Cascade,
                    Some("set_null") => OnDelete::SetNull,
                    _ => OnDelete::Restrict,
                },
                created_at: r[6].as_int().unwrap_or(0),
            })
            .collect())
    }

    /// Declares a relation. The field is created (text, or json for `many`) when missing.
    pub async fn create_relation(&self, new: NewRelation) -> Result<Relation, ApiError> {
        let table = self.collection(&new.collection).await?;
        self.collection(&new.target).await.map_err(|err| match err {
            ApiError::NotFound(_) => {
                ApiError::bad_field("target", format!("target collection '{}' not found", new.target))
            }
            other => other,
        })?;
        let wanted = if new.many { ColumnType::Json } else { ColumnType::Text };
        let table = match table.column(&new.field) {
            Some(_) => table,
            None => {
                super::records::check_new_field_name(&table, &new.field)?;
                // A write may add the field meanwhile, with the type its value gives it: the
                // table as it is after this is what is checked.
                self.add_columns(&new.collection, &[(new.field.clone(), wanted)]).await?
            }
        };
        match table.column(&new.field) {
            Some(col) if col.system => {
                return Err(ApiError::bad_field("field", format!("'{}' is a system field", new.field)));
            }
            Some(col) if col.ty != wanted => {
                return Err(ApiError::bad_field(
                    "field",
                    format!(
                        "'{}' is {}; a {} relation needs {}",
                        new.field,
                        col.ty.name(),
                        if new.many { "many" } else { "single" },
                        wanted.name()
                    ),
                ));
            }
            Some(_) => {}
            None => return Err(ApiError::bad_field("field", format!("'{}' was dropped meanwhile", new.field))),
        }
        let relation = Relation {
            id: uuid::Uuid::now_v7().to_string(),
            collection: new.collection,
            field: new.field,
            target: new.target,
            many: new.many,
            on_delete: new.on_delete.unwrap_or(OnDelete::Restrict),
            created_at: now_ms(),
        };
        // Writes to the collection are validated, and deletes in the target planned, by the
        // relations: both are planned again after this.
        let ends = [relation.collection.as_str(), relation.target.as_str()];
        let insert = insert_relation(self.db.dialect(), &relation);
        let written = self.schema_change(&ends, vec![insert]).await.map_err(|err| match err {
            super::DbError::UniqueViolation(_) => {
                ApiError::Conflict(format!("'{}.{}' already has a relation", relation.collection, relation.field))
            }
            other => other.into(),
        })?;
        if written.first().is_none_or(|rows| rows.affected == 0) {
            return Err(self.values_in_the_way(&relation).await);
        }
        // The catalog knows which fields hold `many` relations (their length is bounded).
        self.refresh_ends(&ends).await?;
        Ok(relation)
    }

    /// The refusal of a relation over a field whose values could not be its values, with how
    /// many records hold such a value: for a `many` relation, values that are not lists of
    /// ids; else, ids of records the target does not hold.
    async fn values_in_the_way(&self, relation: &Relation) -> ApiError {
        let (collection, field) = (&relation.collection, &relation.field);
        let count = |condition: &dyn Fn(&mut SqlBuilder)| {
            let mut b = SqlBuilder::new(self.db.dialect());
            b.push("SELECT COUNT(*) FROM ").ident(collection).push(" AS c WHERE ");
            condition(&mut b);
            async move { self.db.read(b.finish()).await.map(|rows| rows.rows.first().and_then(|r| r[0].as_int())) }
        };
        if relation.many {
            match count(&|b| not_a_list_of_ids(b, field)).await {
                Ok(Some(n)) if n > 0 => {
                    return ApiError::Conflict(format!(
                        "{n} records of '{collection}' hold values in '{field}' that are not arrays of at most \
                         {MAX_RELATION_IDS} record ids (MAX_RELATION_IDS); change or clear them first"
                    ));
                }
                Ok(_) => {}
                Err(err) => return err.into(),
            }
        }
        match count(&|b| names_missing_records(b, relation)).await {
            Ok(n) => ApiError::ConflictOf {
                message: format!(
                    "{} records of '{collection}' name in '{field}' records that '{}' does not hold; change or \
                     clear them first",
                    n.unwrap_or(0),
                    relation.target
                ),
                code: crate::error::codes::FOREIGN_KEY,
            },
            Err(err) => err.into(),
        }
    }

    pub async fn delete_relation(&self, id: &str) -> Result<(), ApiError> {
        let not_found = || ApiError::not_found("relation not found");
        let relations = self.list_relations().await?;
        let relation = relations.iter().find(|r| r.id == id).ok_or_else(not_found)?;
        let ends = [relation.collection.as_str(), relation.target.as_str()];
        let delete = self.db.stmt("DELETE FROM _fb_relations WHERE id = ?", vec![id.into()]);
        let deleted = self.schema_change(&ends, vec![delete]).await?;
        if deleted.first().is_none_or(|rows| rows.affected == 0) {
            return Err(not_found());
        }
        self.refresh_ends(&ends).await
    }

    /// The catalog reads both ends of a relation again once it is made or gone.
    async fn refresh_ends(&self, ends: &[&str]) -> Result<(), ApiError> {
        for end in ends {
            self.catalog.refresh(end).await?;
        }
        Ok(())
    }

    /// For each record, `{field: related record (or null) | [related records]}`. Relations whose
    /// target the caller may not read are left out.
    pub async fn expand(
        &self,
        table: &Table,
        caller: &Caller,
        records: &Records,
        fields: &[String],
    ) -> Result<Vec<Map<String, Json>>, ApiError> {
        let mut out = vec![Map::new(); records.rows.len()];
        if fields.is_empty() {
            return Ok(out);
        }
        let relations = self.list_relations().await?;
        // Records embedded by all the expanded fields together (MAX_EMBEDDED_RECORDS).
        let mut embedded = 0;
        for field in fields {
            let relation =
                relations.iter().find(|r| r.collection == table.name && &r.field == field).ok_or_else(|| {
                    ApiError::bad_field("expand", format!("'{field}' is not a relation of '{}'", table.name))
                })?;
            let Some(position) = records.columns.iter().position(|(name, _)| name == field) else { continue };
            let target = self.collection(&relation.target).await?;
            let Ok(scope) = access::scope(&target, &rules(&target).read, caller) else { continue };
            let ids_of = |value: &Value| ids_held(relation.many, value);
            let mut wanted: Vec<String> = records.rows.iter().flat_map(|row| ids_of(&row[position])).collect();
            wanted.sort();
            wanted.dedup();
            let found = self.records_by_id(&target, &wanted, &scope).await?;
            if relation.many {
                embedded += records
                    .rows
                    .iter()
                    .flat_map(|row| ids_of(&row[position]))
                    .filter(|id| found.contains_key(id))
                    .count();
                super::embed::check_embedded(field, embedded)?;
            }
            for (row, expanded) in records.rows.iter().zip(out.iter_mut()) {
                let ids = ids_of(&row[position]);
                let value = if relation.many {
                    Json::Array(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
                } else {
                    ids.first().and_then(|id| found.get(id).cloned()).unwrap_or(Json::Null)
                };
                expanded.insert(field.clone(), value);
            }
        }
        Ok(out)
    }

    /// Live records of `table` with these ids, within `scope`, by id.
    async fn records_by_id(
        &self,
        table: &Table,
        ids: &[String],
        scope: &Scope,
    ) -> Result<HashMap<String, Json>, ApiError> {
        let mut found = HashMap::new();
        if ids.is_empty() {
            return Ok(found);
        }
        let columns: Vec<_> = table.columns.iter().filter(|c| c.name != "_deleted_at").collect();
        let id_column = crate::data::query::compile::column(table, "_id")?;
        let keys: Vec<Value> = ids.iter().map(|id| Value::Text(id.clone())).collect();
        let rows = self.related_rows(table, scope, &columns, (id_column, &keys), RelatedOrder::Any).await?;
        let records = Records::new(&columns, Rows { rows, ..Rows::default() });
        for record in records.iter() {
            let json = serde_json::to_value(record).map_err(ApiError::internal)?;
            if let Some(id) = json["_id"].as_str() {
                found.insert(id.to_owned(), json);
            }
        }
        Ok(found)
    }
}

/// One consequence of deleting a record, for one relation that points at it.
pub(super) enum Effect {
    /// `restrict`: the delete is refused (409) when `probe` finds a referencing record.
    Refuse { probe: Stmt, relation: Relation },
    /// `cascade` or `set_null`: a write of the referencing records of `relation.collection`
    /// (`deletes` says whether they are deleted or updated).
    Write { stmt: Stmt, relation: Relation, deletes: bool },
}

/// The relation's row, written only while the field's values are what a write to it would
/// have to be: for a `many` relation, nothing or an array of at most `MAX_RELATION_IDS` ids
/// (soft-deleted records count: a restore brings them back); and, in live records, ids of live
/// records of the target (a restore checks its own). The check and the write are one
/// statement, so a write to the field can only slip in if it was checked against the catalog
/// before the relation existed; deletes and expands read a value that is not an array as
/// holding no ids.
fn insert_relation(dialect: Dialect, relation: &Relation) -> Stmt {
    let mut b = SqlBuilder::new(dialect);
    b.push("INSERT INTO _fb_relations (id, collection, field, target, many, on_delete, created_at) SELECT ");
    // Typed casts: PostgreSQL cannot infer a parameter's type from a bare select list.
    let texts = [&relation.id, &relation.collection, &relation.field, &relation.target];
    for text in texts {
        b.push("CAST(").param(text.as_str().into()).push(" AS TEXT), ");
    }
    b.push("CAST(").param(relation.many.into()).push(" AS BOOLEAN), ");
    b.push("CAST(").param(relation.on_delete.name().into()).push(" AS TEXT), ");
    b.push("CAST(").param(relation.created_at.into()).push(" AS BIGINT)");
    b.push(" WHERE NOT EXISTS (SELECT 1 FROM ").ident(&relation.collection).push(" AS c WHERE ");
    if relation.many {
        not_a_list_of_ids(&mut b, &relation.field);
        b.push(" OR ");
    }
    names_missing_records(&mut b, relation);
    b.push(")");
    b.finish()
}

/// The condition "this live record (aliased `c`) names in its relation field a record that
/// the target does not hold live". Each branch guards its own reading of the value (see
/// [`not_a_list_of_ids`]).
fn names_missing_records(b: &mut SqlBuilder, relation: &Relation) {
    let (field, target) = (&relation.field, &relation.target);
    let missing = |b: &mut SqlBuilder, id: &str| {
        b.push("NOT EXISTS (SELECT 1 FROM ").ident(target).push(" AS t WHERE t.\"_id\" = ").push(id);
        b.push(" AND t.\"_deleted_at\" IS NULL)");
    };
    // The record's own columns, named through its alias `c` (the target may have a column
    // of the field's name).
    let own = format!("c.{}", crate::data::sql::quote_ident(field));
    b.push("c.\"_deleted_at\" IS NULL AND ");
    match (relation.many, b.dialect()) {
        (false, _) => {
            b.push(&own).push(" IS NOT NULL AND ");
            missing(b, &own);
        }
        (true, Dialect::Postgres) => {
            b.push("CASE WHEN jsonb_typeof(").push(&own).push(") = 'array' THEN EXISTS (SELECT 1 FROM ");
            b.push("jsonb_array_elements_text(").push(&own).push(") AS e(v) WHERE ");
            missing(b, "e.v");
            b.push(") ELSE false END");
        }
        (true, Dialect::Sqlite) => {
            b.push("CASE WHEN json_valid(").push(&own).push(") THEN CASE WHEN json_type(").push(&own);
            b.push(") = 'array' THEN EXISTS (SELECT 1 FROM json_each(").push(&own).push(") AS e WHERE ");
            missing(b, "e.value");
            b.push(") ELSE 0 END ELSE 0 END");
        }
    }
}

/// The condition "this record's `field` holds something other than nothing or an array of at
/// most `MAX_RELATION_IDS` strings". A CASE, since PostgreSQL promises no order of evaluation
/// for OR, and the length of a non-array is an error there.
fn not_a_list_of_ids(b: &mut SqlBuilder, field: &str) {
    let max = (MAX_RELATION_IDS as i64).into();
    match b.dialect() {
        Dialect::Postgres => {
            b.push("CASE jsonb_typeof(").ident(field).push(") WHEN 'array' THEN jsonb_array_length(").ident(field);
            b.push(") > ").param(max).push(" OR EXISTS (SELECT 1 FROM jsonb_array_elements(").ident(field);
            b.push(") AS e WHERE jsonb_typeof(e) <> 'string') WHEN 'null' THEN false ELSE ");
            b.ident(field).push(" IS NOT NULL END");
        }
        Dialect::Sqlite => {
            b.push("CASE json_type(").ident(field).push(") WHEN 'array' THEN json_array_length(").ident(field);
            b.push(") > ").param(max).push(" OR EXISTS (SELECT 1 FROM json_each(").ident(field);
            b.push(") WHERE type <> 'text') WHEN 'null' THEN 0 ELSE ").ident(field).push(" IS NOT NULL END");
        }
    }
}

/// The record ids a relation field's value holds: its text for a single relation, the strings
/// of its array for a `many` one (a value of another shape holds none).
fn ids_held(many: bool, value: &Value) -> Vec<String> {
    match (many, value) {
        (false, Value::Text(id)) => vec![id.clone()],
        (true, v) => match v.as_json() {
            Json::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The record ids a write gives the relation fields of a collection (the typed `values` of
/// one create, update or restore), relation by relation, each list without repeats. (A
/// single relation's field is text: a value of another type is refused before this.)
pub(super) fn referenced_ids<'r>(
    relations: &'r [RelationField],
    values: &[(String, Value)],
) -> Vec<(&'r RelationField, Vec<String>)> {
    let mut referenced = Vec::new();
    for relation in relations {
        let Some((_, value)) = values.iter().find(|(field, _)| field == &relation.field) else { continue };
        let mut ids = ids_held(relation.many, value);
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            referenced.push((relation, ids));
        }
    }
    referenced
}

/// The statement that reads which of `ids` are live records of `target` within `scope`. On
/// PostgreSQL it locks them until the write commits, as a foreign key does, so that a
/// concurrent delete of one waits and then meets the new reference (and its `on_delete`
/// applies).
pub(super) fn live_records(dialect: Dialect, target: &Table, ids: &[String], scope: &Scope) -> Stmt {
    let mut b = SqlBuilder::new(dialect);
    b.push("SELECT \"_id\" FROM ").ident(&target.name).push(" WHERE \"_id\" IN (");
    for (i, id) in ids.iter().enumerate() {
        b.push(if i == 0 { "" } else { ", " }).param(id.as_str().into());
    }
    b.push(")");
    super::read::within(&mut b, target, scope, super::records::Deleted::Hidden);
    if dialect == Dialect::Postgres {
        b.push(" FOR SHARE");
    }
    b.finish()
}

/// 409: a write names a record the relation's target does not hold (or holds soft-deleted),
/// with PostgreSQL's foreign-key code, as a table's foreign key answers.
pub(super) fn dangling(relation: &RelationField, id: &str) -> ApiError {
    ApiError::ConflictOf {
        message: format!(
            "'{}' names no record '{}' of '{}'",
            relation.field,
            super::records::short(id),
            relation.target
        ),
        code: crate::error::codes::FOREIGN_KEY,
    }
}

/// 409: a `restrict` relation still points at the record. The code is PostgreSQL's
/// foreign-key violation, which is what a PostgREST client sees for the same refusal.
pub(super) fn restricted(relation: &Relation) -> ApiError {
    ApiError::ConflictOf {
        message: format!(
            "the record is referenced by '{}.{}' (on_delete: restrict)",
            relation.collection, relation.field
        ),
        code: crate::error::codes::FOREIGN_KEY,
    }
}

/// The columns of a collection, by its name.
pub(super) type ColumnsOf<'a> = dyn Fn(&str) -> Vec<String> + 'a;

/// What deleting the record `id` of the collection `target` does to the records that point
/// at it, relation by relation. `returning` asks the writes to return these columns of the
/// records they change (for the change feed), per referencing collection.
pub(super) fn on_delete_plan(
    dialect: Dialect,
    relations: &[Relation],
    target: &str,
    id: &str,
    hard: bool,
    returning: Option<&ColumnsOf<'_>>,
) -> Vec<Effect> {
    let now = now_ms();
    let mut effects = Vec::new();
    for relation in relations.iter().filter(|r| r.target == target) {
        let mut b = SqlBuilder::new(dialect);
        let deletes = match relation.on_delete {
            OnDelete::Restrict => {
                b.push("SELECT 1 FROM ").ident(&relation.collection).push(" WHERE \"_deleted_at\" IS NULL AND ");
                refers_to(&mut b, relation, id);
                b.push(" LIMIT 1");
                effects.push(Effect::Refuse { probe: b.finish(), relation: relation.clone() });
                continue;
            }
            OnDelete::Cascade => {
                if hard {
                    b.push("DELETE FROM ").ident(&relation.collection).push(" WHERE ");
                } else {
                    b.push("UPDATE ").ident(&relation.collection).push(" SET \"_deleted_at\" = ").param(now.into());
                    b.push(", \"_updated_at\" = ").param(now.into()).push(" WHERE \"_deleted_at\" IS NULL AND ");
                }
                refers_to(&mut b, relation, id);
                true
            }
            OnDelete::SetNull => {
                b.push("UPDATE ").ident(&relation.collection).push(" SET ").ident(&relation.field).push(" = ");
                match (relation.many, dialect) {
                    (false, _) => {
                        b.push("NULL");
                    }
                    (true, Dialect::Postgres) => {
                        b.ident(&relation.field).push(" - ").param(id.into());
                    }
                    (true, Dialect::Sqlite) => {
                        b.push("(SELECT json_group_array(value) FROM json_each(").ident(&relation.field);
                        b.push(") WHERE value <> ").param(id.into()).push(")");
                    }
                }
                b.push(", \"_updated_at\" = ").param(now.into()).push(" WHERE ");
                refers_to(&mut b, relation, id);
                false
            }
        };
        if let Some(columns) = returning.map(|f| f(&relation.collection)).filter(|c| !c.is_empty()) {
            b.push(" RETURNING ").ident_list(columns.iter().map(String::as_str));
        }
        effects.push(Effect::Write { stmt: b.finish(), relation: relation.clone(), deletes });
    }
    effects
}

/// The condition "this record's relation field points at `id`".
fn refers_to(b: &mut SqlBuilder, relation: &Relation, id: &str) {
    match (relation.many, b.dialect()) {
        (false, _) => {
            b.ident(&relation.field).push(" = ").param(id.into());
        }
        (true, Dialect::Postgres) => {
            b.ident(&relation.field).push(" @> jsonb_build_array(").param(id.into()).push("::text)");
        }
        // Only an array holds ids (json_each would also walk an object's members, or take a
        // lone string for a list of one). The CASEs fix the order: text that is not JSON is
        // never given to `json_type` or `json_each` (an error there), and holds no ids.
        (true, Dialect::Sqlite) => {
            let field = &relation.field;
            b.push("CASE WHEN json_valid(").ident(field).push(") THEN CASE WHEN json_type(").ident(field);
            b.push(") = 'array' THEN EXISTS (SELECT 1 FROM json_each(").ident(field).push(") WHERE value = ");
            b.param(id.into()).push(") END END");
        }
    }
}
