//! The search index of a collection: which fields it covers, and the statements that build it
//! anew or remove it.

use super::{fts_table, quote_literal, quoted_fts};
use crate::data::catalog::{ColumnType, Table};
use crate::data::names::is_reserved_field;
use crate::data::sql::{SqlBuilder, quote_ident};
use crate::data::{Dialect, Stmt, Value};

/// The fields a collection's search covers: its text fields, system fields left out, and so
/// are names FTS5 keeps for itself (a `rank` column made before such names were refused
/// would break every search). Tables made outside Ferrobase have no search index.
pub fn search_fields(table: &Table) -> Vec<String> {
    if table.collection.is_none() {
        return Vec::new();
    }
    table
        .columns
        .iter()
        .filter(|c| c.ty == ColumnType::Text && !c.system && !is_reserved_field(&c.name))
        .map(|c| c.name.clone())
        .collect()
}

/// The fields a searched collection's index must cover once the fields `added` join the
/// table, when they are not those it covers: a new text field is searched from then on.
/// `None` for a collection never searched, or whose index covers them already.
pub fn fields_to_reindex(table: &Table, added: &[(String, ColumnType)]) -> Option<Vec<String>> {
    let indexed = table.collection.as_ref()?.search_index.as_ref()?;
    let mut fields = search_fields(table);
    let added_text = added.iter().filter(|(name, ty)| *ty == ColumnType::Text && !is_reserved_field(name));
    fields.extend(added_text.map(|(name, _)| name.clone()));
    (fields != *indexed).then_some(fields)
}

/// Statements that remove the search index of `table`.
pub fn drop_stmts(dialect: Dialect, table: &str) -> Vec<Stmt> {
    match dialect {
        // The triggers go with the FTS table's name; drop them explicitly all the same, so a
        // half-built index cannot leave one behind.
        Dialect::Sqlite => {
            let mut stmts = vec![Stmt::new(format!("DROP TABLE IF EXISTS {}", quoted_fts(table)), vec![])];
            for suffix in ["ai", "ad", "au"] {
                let trigger = quote_ident(&format!("{}_{suffix}", fts_table(table)));
                stmts.push(Stmt::new(format!("DROP TRIGGER IF EXISTS {trigger}"), vec![]));
            }
            stmts
        }
        // The index goes with the column.
        Dialect::Postgres => vec![Stmt::new(
            format!("ALTER TABLE {} DROP COLUMN IF EXISTS {}", quote_ident(table), quote_ident(super::PG_COLUMN)),
            vec![],
        )],
    }
}

/// Statements that build the search index of `table` over `fields` from scratch (dropping
/// any older one) and record which fields it covers.
pub fn rebuild_stmts(dialect: Dialect, table: &str, fields: &[String]) -> Vec<Stmt> {
    let mut stmts = drop_stmts(dialect, table);
    if !fields.is_empty() {
        match dialect {
            Dialect::Sqlite => stmts.extend(fts5_stmts(table, fields)),
            Dialect::Postgres => {
                let mut column = SqlBuilder::new(dialect);
                column.push("ALTER TABLE ").ident(table).push(" ADD COLUMN ").ident(super::PG_COLUMN);
                column.push(" tsvector GENERATED ALWAYS AS (");
                super::tsvector(&mut column, fields);
                column.push(") STORED");
                stmts.push(column.finish());
                let mut index = SqlBuilder::new(dialect);
                index.push("CREATE INDEX ").ident(&pg_index(table)).push(" ON ").ident(table).push(" USING GIN (");
                index.ident(super::PG_COLUMN).push(")");
                stmts.push(index.finish());
            }
        }
    }
    let mut record = SqlBuilder::new(dialect);
    record.push("UPDATE _fb_collections SET search_index = ").param(Value::Json(fields.into()));
    record.push(" WHERE name = ").param(table.into());
    stmts.push(record.finish());
    stmts
}

/// An FTS5 table over `fields` that reads its text from the collection (external content),
/// three triggers that keep it in step, and the fill of what is there already.
fn fts5_stmts(table: &str, fields: &[String]) -> Vec<Stmt> {
    let fts = quoted_fts(table);
    let t = quote_ident(table);
    let cols: Vec<String> = fields.iter().map(|f| quote_ident(f)).collect();
    let cols = cols.join(", ");
    let new_values: Vec<String> = fields.iter().map(|f| format!("new.{}", quote_ident(f))).collect();
    let old_values: Vec<String> = fields.iter().map(|f| format!("old.{}", quote_ident(f))).collect();
    let (new_values, old_values) = (new_values.join(", "), old_values.join(", "));
    let trigger = |suffix: &str| quote_ident(&format!("{}_{suffix}", fts_table(table)));
    let insert_new = format!("INSERT INTO {fts} (rowid, {cols}) VALUES (new.rowid, {new_values});");
    let delete_old = format!("INSERT INTO {fts} ({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old_values});");
    // remove_diacritics 0: case is folded, accents are kept, as PostgreSQL's `simple` does.
    let create = format!(
        "CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content={}, tokenize='unicode61 remove_diacritics 0')",
        quote_literal(table)
    );
    [
        create,
        format!("CREATE TRIGGER {} AFTER INSERT ON {t} BEGIN {insert_new} END", trigger("ai")),
        format!("CREATE TRIGGER {} AFTER DELETE ON {t} BEGIN {delete_old} END", trigger("ad")),
        format!("CREATE TRIGGER {} AFTER UPDATE OF {cols} ON {t} BEGIN {delete_old} {insert_new} END", trigger("au")),
        // The fill, as a plain insert: FTS5's 'rebuild' command on a table made in the same
        // transaction leaves SQLite unable to commit once a savepoint around both is rolled
        // back ("SQL logic error"), and a write that adds a text field, then is refused, is
        // rolled back so, inside a group of other requests' writes.
        format!("INSERT INTO {fts} (rowid, {cols}) SELECT rowid, {cols} FROM {t}"),
        // One segment: left as the fill leaves it, later writes keep merging their small
        // segments into a large one (creates measured at half speed).
        format!("INSERT INTO {fts} ({fts}) VALUES ('optimize')"),
    ]
    .into_iter()
    .map(|sql| Stmt::new(sql, vec![]))
    .collect()
}

/// The GIN index's name, within PostgreSQL's 63 bytes.
fn pg_index(table: &str) -> String {
    crate::data::collections::index_name(table, &["_fb_search"])
}
