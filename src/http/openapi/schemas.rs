//! The live catalog as OpenAPI: a component schema per table (and a partial one for updates),
//! and the concrete paths of each collection and table, referencing those schemas.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::operation::{Op, query, schema_ref};
use super::static_paths::{Target, record_ops, table_ops};
use crate::data::catalog::{Column, ColumnType, Table};
use crate::data::relations::Relation;
use crate::data::validation::FieldRule;

/// Query keywords of the tables surface: a column of that name gets no filter parameter.
const TABLE_KEYWORDS: &[&str] = &["select", "order", "limit", "offset", "count", "on_conflict", "columns", "or", "and"];

/// Query keywords of the collections surface, likewise.
const RECORD_KEYWORDS: &[&str] = &[
    "limit",
    "page",
    "after",
    "sort",
    "filter",
    "fields",
    "expand",
    "search",
    "include_deleted",
    "op",
    "field",
    "group_by",
    "or",
    "and",
];

/// Component schemas and operations for every table of the catalog. `taken` holds the
/// component names already in use.
pub fn from_catalog(
    tables: &[Arc<Table>],
    relations: &[Relation],
    taken: &mut HashSet<String>,
) -> (Map<String, Json>, Vec<Op>) {
    let mut schemas = Map::new();
    let mut ops = Vec::new();
    for table in tables {
        let name = unique_name(&component_name(&table.name), taken);
        let patch = format!("{name}.patch");
        taken.insert(patch.clone());
        let rels: Vec<&Relation> = relations.iter().filter(|r| r.collection == table.name).collect();
        schemas.insert(name.clone(), table_schema(table, &rels, false));
        schemas.insert(patch.clone(), table_schema(table, &rels, true));
        let segment = path_segment(&table.name);
        if table.collection.is_some() {
            ops.extend(record_ops(&Target {
                base: format!("/api/v1/{segment}"),
                tag: format!("Collection {}", table.name),
                record: schema_ref(&name),
                patch: schema_ref(&patch),
                filters: column_filters(table, RECORD_KEYWORDS),
            }));
        }
        // A table whose name reads as singular is reachable by its plural too, unless another
        // table holds that name.
        let plural = crate::data::names::plural(&table.name);
        let mut segments = vec![segment];
        if crate::data::names::singulars(&table.name).is_empty() && !tables.iter().any(|t| t.name == plural) {
            segments.push(path_segment(&plural));
        }
        for segment in segments {
            ops.extend(table_ops(&Target {
                base: format!("/api/v1/tables/{segment}"),
                tag: format!("Table {}", table.name),
                record: schema_ref(&name),
                patch: schema_ref(&patch),
                filters: column_filters(table, TABLE_KEYWORDS),
            }));
        }
    }
    (schemas, ops)
}

/// One `column=op.value` filter parameter per column, except columns named like a keyword.
fn column_filters(table: &Table, keywords: &[&str]) -> Vec<Json> {
    let description =
        "filter: `op.value` (eq, neq, gt, gte, lt, lte, like, ilike, in, is, cs, cd, fts; `not.` negates)";
    table
        .columns
        .iter()
        .filter(|c| !keywords.contains(&c.name.as_str()))
        .map(|c| query(&c.name, json!({"type": "string"}), description))
        .collect()
}

/// The JSON Schema of a table's rows: system columns read-only, nullability from the
/// column, the collection's field rules where JSON Schema can say them. `partial`: for
/// updates, nothing required.
pub fn table_schema(table: &Table, relations: &[&Relation], partial: bool) -> Json {
    let field_rules = table.collection.as_ref().map(|c| &c.field_rules);
    let mut properties = Map::new();
    let mut required = Vec::new();
    for col in &table.columns {
        let rule = field_rules.and_then(|r| r.get(&col.name));
        let relation = relations.iter().find(|r| r.field == col.name).copied();
        properties.insert(col.name.clone(), column_schema(col, rule, relation));
        let always_there = col.system && col.name != "_deleted_at";
        if !partial && (always_there || rule.is_some_and(|r| r.required)) {
            required.push(col.name.clone());
        }
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if table.collection.is_some() {
        schema["description"] = json!(format!("A record of the collection `{}`.", table.name));
    } else {
        schema["description"] = json!(format!("A row of the table `{}`.", table.name));
    }
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn column_schema(col: &Column, rule: Option<&FieldRule>, relation: Option<&Relation>) -> Json {
    let required = rule.is_some_and(|r| r.required);
    let nullable = !col.not_null && !col.primary_key && !required;
    let ty = match col.ty {
        ColumnType::Text => Some("string"),
        ColumnType::Integer => Some("integer"),
        ColumnType::Real => Some("number"),
        ColumnType::Boolean => Some("boolean"),
        ColumnType::Json => None,
    };
    let mut s = Map::new();
    match ty {
        Some(ty) if nullable => s.insert("type".into(), json!([ty, "null"])),
        Some(ty) => s.insert("type".into(), json!(ty)),
        None if nullable => None,
        None => s.insert("not".into(), json!({"type": "null"})),
    };
    let mut description = match col.ty {
        ColumnType::Json => vec!["any JSON value".to_owned()],
        _ => Vec::new(),
    };
    if col.system {
        s.insert("readOnly".into(), json!(true));
        description.push(system_description(&col.name).to_owned());
    }
    if let Some(rel) = relation {
        description.push(if rel.many {
            format!("ids of `{}` records; `expand={}` inlines them", rel.target, rel.field)
        } else {
            format!("id of a `{}` record; `expand={}` inlines it", rel.target, rel.field)
        });
    }
    if let Some(rule) = rule {
        apply_rule(&mut s, col.ty, rule, nullable);
    }
    if !description.is_empty() {
        s.insert("description".into(), json!(description.join("; ")));
    }
    Json::Object(s)
}

/// Maps the validation rules JSON Schema can express: bounds, lengths, pattern, enum.
fn apply_rule(s: &mut Map<String, Json>, ty: ColumnType, rule: &FieldRule, nullable: bool) {
    if let Some(min) = rule.min {
        s.insert("minimum".into(), number(min));
    }
    if let Some(max) = rule.max {
        s.insert("maximum".into(), number(max));
    }
    let strings = matches!(ty, ColumnType::Text | ColumnType::Json);
    let arrays = ty == ColumnType::Json;
    // A required string may not be empty.
    let min_length = rule.min_length.or(rule.required.then_some(1));
    if let Some(n) = min_length {
        if strings {
            s.insert("minLength".into(), json!(n));
        }
        if arrays {
            s.insert("minItems".into(), json!(n));
        }
    }
    if let Some(n) = rule.max_length {
        if strings {
            s.insert("maxLength".into(), json!(n));
        }
        if arrays {
            s.insert("maxItems".into(), json!(n));
        }
    }
    if let Some(pattern) = &rule.pattern {
        s.insert("pattern".into(), json!(pattern));
    }
    if let Some(allowed) = &rule.allowed {
        let mut values = allowed.clone();
        if nullable && !values.contains(&Json::Null) {
            values.push(Json::Null);
        }
        s.insert("enum".into(), Json::Array(values));
    }
}

/// A whole number as an integer, so `min: 0` reads `"minimum": 0`.
fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9e15 { json!(n as i64) } else { json!(n) }
}

fn system_description(name: &str) -> &'static str {
    match name {
        "_id" => "record id (UUIDv7)",
        "_created_at" => "creation time, Unix milliseconds",
        "_updated_at" => "last change, Unix milliseconds",
        "_owner_id" => "the creating user's id (null for the admin or anonymous callers)",
        "_deleted_at" => "soft-deletion time; only on deleted records when they are asked for",
        _ => "set by the server",
    }
}

/// A component name (`[A-Za-z0-9_-]`; `.` is kept for the suffixes added here).
fn component_name(table: &str) -> String {
    let name: String =
        table.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if name.is_empty() { "_".into() } else { name }
}

/// `name`, or `name.2`, `name.3`… when it is taken; recorded as taken.
fn unique_name(name: &str, taken: &mut HashSet<String>) -> String {
    let mut candidate = name.to_owned();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{name}.{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

/// A table name as one path segment, percent-encoded where it is not URL-safe.
fn path_segment(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe_and_unique() {
        let mut taken: HashSet<String> = ["Error".to_owned()].into();
        assert_eq!(unique_name(&component_name("Error"), &mut taken), "Error.2");
        assert_eq!(unique_name(&component_name("a b"), &mut taken), "a_b");
        assert_eq!(unique_name(&component_name("a_b"), &mut taken), "a_b.2");
        assert_eq!(path_segment("a b/{c}"), "a%20b%2F%7Bc%7D");
    }

    #[test]
    fn rules_map_to_json_schema() {
        let rule: FieldRule = serde_json::from_value(json!({
            "required": true, "min_length": 3, "max_length": 20, "pattern": "^[a-z]+$"
        }))
        .unwrap();
        let col = Column::new("title", ColumnType::Text);
        let s = column_schema(&col, Some(&rule), None);
        assert_eq!(s, json!({"type": "string", "minLength": 3, "maxLength": 20, "pattern": "^[a-z]+$"}));
        let rule: FieldRule = serde_json::from_value(json!({"min": 0, "max": 10.5, "enum": [1, 2]})).unwrap();
        let s = column_schema(&Column::new("score", ColumnType::Real), Some(&rule), None);
        assert_eq!(s, json!({"type": ["number", "null"], "minimum": 0, "maximum": 10.5, "enum": [1, 2, null]}));
    }
}
