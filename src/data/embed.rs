//! Embedded relations of the tables surface (`select=*,author(*)`): through a relation of
//! the collections surface (`_fb_relations`, named by its field) or through a real foreign
//! key, named by the other table: to the table a key points at (one object) or from a table
//! whose key points here (an array). One query per embed for the whole page, never one per
//! row; the embedded table's read rule applies, and rows the caller may not read are left
//! out.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use super::access;
use super::access::Caller;
use super::catalog::{ForeignKey, Table};
use super::query::SelectItem;
use super::read::RelatedOrder;
use super::tables::select_columns;
use super::{Store, Value};
use crate::error::ApiError;
use crate::limits::MAX_EMBEDDED_RECORDS;

/// How the rows of an embedded table are matched to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `local` holds the `remote` value of at most one target row: an object or null.
    One,
    /// `local` holds a JSON array of target ids (a `many` relation): an array.
    ManyIds,
    /// Target rows whose `remote` equals this row's `local`: an array.
    Many,
}

pub(super) struct EmbedPlan {
    pub answer_name: String,
    pub target: Arc<Table>,
    /// The column of the embedding table, and its index among the fetched columns.
    pub local: String,
    pub local_index: usize,
    /// The column of the embedded table.
    pub remote: String,
    pub kind: Kind,
    pub select: Vec<SelectItem>,
}

/// 400: several foreign keys of `from` point at `to`; the message names them and the hint
/// that picks one for the embed `embedded`.
fn ambiguous(from: &str, to: &str, embedded: &str, keys: &[&ForeignKey]) -> ApiError {
    let mut columns: Vec<&str> = keys.iter().map(|fk| fk.column.as_str()).collect();
    columns.sort_unstable();
    ApiError::bad_request(format!(
        "'{from}' has several foreign keys to '{to}' ({}): the embed is ambiguous; name one by its column or constraint, as {embedded}!{}(…)",
        columns.join(", "),
        columns[0]
    ))
}

/// The column a foreign key points at: the one it names, or its target's key.
fn key_pointed_at(fk: &ForeignKey, target: &Table) -> Option<String> {
    match &fk.target_column {
        Some(column) => Some(column.clone()),
        None => target.key_column().map(|key| key.name.clone()),
    }
}

impl Store {
    /// Resolves `name` embedded in `table`'s rows: a relation field, a table related by a
    /// foreign key (either way), or a foreign key's column (`author_id(*)`). `hint` names the
    /// foreign key, by its column or constraint, where several could be meant.
    pub(super) async fn embed_plan(
        &self,
        table: &Table,
        name: &str,
        alias: Option<&str>,
        hint: Option<&str>,
        select: &[SelectItem],
    ) -> Result<EmbedPlan, ApiError> {
        if select.iter().any(|i| matches!(i, SelectItem::Embed { .. })) {
            return Err(ApiError::bad_request(format!(
                "nested embeds are not supported: '{name}(…)' may only select columns"
            )));
        }
        let shown: String = name.chars().take(64).collect();
        let unrelated = || {
            let through =
                hint.map(|h| format!(" through '{}'", h.chars().take(64).collect::<String>())).unwrap_or_default();
            ApiError::bad_request(format!(
                "'{shown}' is neither a relation of '{}' nor a table related to it by a foreign key{through}",
                table.name
            ))
        };
        let plan = |target: Arc<Table>, local: &str, remote: &str, kind: Kind| EmbedPlan {
            answer_name: alias.unwrap_or(name).to_owned(),
            target,
            local: local.to_owned(),
            local_index: 0,
            remote: remote.to_owned(),
            kind,
            select: select.to_vec(),
        };
        let relations = self.list_relations().await?;
        if let Some(r) = relations.iter().find(|r| r.collection == table.name && r.field == name) {
            if hint.is_some_and(|h| h != r.field) {
                return Err(unrelated());
            }
            let target = self.collection(&r.target).await?;
            return Ok(plan(target, &r.field, "_id", if r.many { Kind::ManyIds } else { Kind::One }));
        }
        let named = |fk: &&ForeignKey| hint.is_none_or(|h| fk.column == h || fk.name == h);
        let target = match self.catalog.lookup(name).await? {
            Some(target) => target,
            // A foreign key's own column names the table it points at.
            None => match table.foreign_keys.iter().find(|fk| fk.column == name).filter(named) {
                Some(fk) => {
                    let target = self.catalog.lookup(&fk.target).await?.ok_or_else(unrelated)?;
                    let remote = key_pointed_at(fk, &target).ok_or_else(unrelated)?;
                    return Ok(plan(target, &fk.column, &remote, Kind::One));
                }
                None => return Err(unrelated()),
            },
        };
        // A foreign key of this table pointing at the target.
        let outgoing: Vec<_> = table.foreign_keys.iter().filter(|fk| fk.target == target.name).filter(named).collect();
        if outgoing.len() > 1 {
            return Err(ambiguous(&table.name, &shown, &shown, &outgoing));
        }
        if let Some(fk) = outgoing.first() {
            let remote = key_pointed_at(fk, &target).ok_or_else(unrelated)?;
            return Ok(plan(target.clone(), &fk.column, &remote, Kind::One));
        }
        // A foreign key of the target pointing here (one-to-many).
        let incoming: Vec<_> = target.foreign_keys.iter().filter(|fk| fk.target == table.name).filter(named).collect();
        if incoming.len() > 1 {
            return Err(ambiguous(&shown, &table.name, &shown, &incoming));
        }
        if let Some(fk) = incoming.first() {
            let local = key_pointed_at(fk, table).ok_or_else(unrelated)?;
            let remote = fk.column.clone();
            return Ok(plan(target.clone(), &local, &remote, Kind::Many));
        }
        // A single relation of the target collection pointing here.
        let back: Vec<_> = relations
            .iter()
            .filter(|r| r.collection == target.name && r.target == table.name && !r.many)
            .filter(|r| hint.is_none_or(|h| r.field == h))
            .collect();
        match back[..] {
            [] => Err(unrelated()),
            [r] => Ok(plan(target.clone(), "_id", &r.field.clone(), Kind::Many)),
            _ => Err(ApiError::bad_request(format!(
                "'{shown}' has several relations to '{}' ({}): the embed is ambiguous; name one, as {shown}!{}(…)",
                table.name,
                back.iter().map(|r| r.field.as_str()).collect::<Vec<_>>().join(", "),
                back[0].field
            ))),
        }
    }

    /// The embedded value of every row (object, null or array), in one query. `embedded`
    /// counts the records the answer's embeds hold so far, this one's added.
    pub(super) async fn embed(
        &self,
        _table: &Table,
        caller: &Caller,
        plan: &EmbedPlan,
        rows: &[Vec<Value>],
        embedded: &mut usize,
    ) -> Result<Vec<Json>, ApiError> {
        let keys_of = |row: &Vec<Value>| -> Vec<Value> {
            let value = &row[plan.local_index];
            match plan.kind {
                Kind::ManyIds => match value.as_json() {
                    Json::Array(items) => {
                        items.iter().filter_map(|i| i.as_str().map(|s| Value::Text(s.to_owned()))).collect()
                    }
                    _ => Vec::new(),
                },
                _ if value.is_null() => Vec::new(),
                _ => vec![value.clone()],
            }
        };
        let empty = || if plan.kind == Kind::One { Json::Null } else { Json::Array(Vec::new()) };
        let target = &plan.target;
        let Ok(scope) = access::scope(target, &target.access_rules().read, caller) else {
            return Ok(rows.iter().map(|_| empty()).collect());
        };
        let mut wanted: Vec<Value> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for row in rows {
            for key in keys_of(row) {
                if let Some(k) = key_text(&key)
                    && seen.insert(k)
                {
                    wanted.push(key);
                }
            }
        }
        if wanted.is_empty() {
            return Ok(rows.iter().map(|_| empty()).collect());
        }
        let (mut columns, names) = select_columns(target, Some(&plan.select))?;
        let shown = columns.len();
        columns.push(super::query::compile::column(target, &plan.remote)?);
        let remote = *columns.last().expect("the remote key was pushed");
        let found = self.related_rows(target, &scope, &columns, (remote, &wanted), RelatedOrder::ByKey).await?;
        let mut by_key: HashMap<String, Vec<Json>> = HashMap::new();
        for row in &found {
            let Some(key) = key_text(&row[shown]) else { continue };
            let mut object = serde_json::Map::new();
            for ((name, col), value) in names.iter().zip(&columns).zip(row) {
                let value = serde_json::to_value(super::records::Typed(col.ty, value)).map_err(ApiError::internal)?;
                object.insert(name.clone(), value);
            }
            by_key.entry(key).or_default().push(Json::Object(object));
        }
        if plan.kind != Kind::One {
            *embedded += rows
                .iter()
                .flat_map(|row| keys_of(row).iter().filter_map(key_text).collect::<Vec<_>>())
                .map(|k| by_key.get(&k).map_or(0, Vec::len))
                .sum::<usize>();
            check_embedded(&plan.answer_name, *embedded)?;
        }
        Ok(rows
            .iter()
            .map(|row| {
                let keys = keys_of(row);
                let mut matched =
                    keys.iter().filter_map(key_text).flat_map(|k| by_key.get(&k).cloned().unwrap_or_default());
                match plan.kind {
                    Kind::One => matched.next().unwrap_or(Json::Null),
                    Kind::ManyIds | Kind::Many => Json::Array(matched.collect()),
                }
            })
            .collect())
    }
}

/// Refuses an embed (or expand) that would bring the records the answer's embeds hold, all
/// of them together, past [`MAX_EMBEDDED_RECORDS`]: each is a copy in memory, however few
/// distinct records they are, and one `select=` may embed the same relation many times over.
pub(super) fn check_embedded(name: &str, embedded: usize) -> Result<(), ApiError> {
    if embedded > MAX_EMBEDDED_RECORDS {
        let shown: String = name.chars().take(64).collect();
        return Err(ApiError::bad_request(format!(
            "with '{shown}', this answer would embed {embedded} records; at most {MAX_EMBEDDED_RECORDS} are allowed \
             (MAX_EMBEDDED_RECORDS): ask for a smaller page or fewer embeds"
        )));
    }
    Ok(())
}

/// A join key as text, so values of either backend compare alike; `None` for null.
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Text(s) => Some(format!("s{s}")),
        Value::Int(i) => Some(format!("n{i}")),
        Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(format!("n{}", *f as i64)),
        Value::Real(f) => Some(format!("r{f}")),
        Value::Bool(b) => Some(format!("b{b}")),
        Value::Json(v) => Some(format!("j{v}")),
        // As the bytes are read back (their hex form), so a written key meets a read one.
        Value::Bytes(b) => Some(format!("s{}", super::text_formats::hex_form(b))),
    }
}
