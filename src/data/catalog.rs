//! The catalog: every exposed table's columns and, for collections, their rules. Read from
//! the database by introspection (so tables made with plain SQL are seen too) and cached;
//! schema changes made through Ferrobase refresh the cache at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::access::Rules;
use super::text_formats::TextFormat;
use super::tx::Tx;
use super::{Db, DbError, Dialect, Rows, Stmt, Value, names};

/// The column types Ferrobase distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Text,
    Integer,
    Real,
    Boolean,
    Json,
}

impl ColumnType {
    /// Maps a declared SQL type (as either database reports it) to a column type.
    pub fn from_declared(declared: &str) -> ColumnType {
        let d = declared.to_ascii_lowercase();
        // PostgreSQL arrays (`integer[]`, `text[]`) are read as JSON arrays.
        if d.contains("bool") && !d.ends_with("[]") {
            ColumnType::Boolean
        } else if d.contains("json") || d.ends_with("[]") {
            ColumnType::Json
        } else if d.contains("int") && !["interval", "point", "range", "vector"].iter().any(|t| d.contains(t)) {
            // SQLite's rule (a type naming `int` is an integer), but not PostgreSQL's
            // `interval`, `point`, `int4range`/`int8multirange` or `int2vector`.
            ColumnType::Integer
        } else if ["real", "double", "float", "numeric", "decimal"].iter().any(|t| d.contains(t)) {
            ColumnType::Real
        } else {
            ColumnType::Text
        }
    }

    /// The type named in an API request (`"text"`, `"integer"`, …).
    pub fn parse(name: &str) -> Option<ColumnType> {
        match name.to_ascii_lowercase().as_str() {
            "text" | "string" => Some(ColumnType::Text),
            "integer" | "int" => Some(ColumnType::Integer),
            "real" | "number" | "float" => Some(ColumnType::Real),
            "boolean" | "bool" => Some(ColumnType::Boolean),
            "json" => Some(ColumnType::Json),
            _ => None,
        }
    }

    /// The type a new column gets from the first JSON value written to it.
    pub fn infer(value: &serde_json::Value) -> ColumnType {
        match value {
            serde_json::Value::String(_) => ColumnType::Text,
            // A whole number past i64 (only u64 holds it) fits no integer column.
            serde_json::Value::Number(n) if n.is_i64() => ColumnType::Integer,
            serde_json::Value::Number(_) => ColumnType::Real,
            serde_json::Value::Bool(_) => ColumnType::Boolean,
            serde_json::Value::Null | serde_json::Value::Array(_) | serde_json::Value::Object(_) => ColumnType::Json,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Real => "real",
            ColumnType::Boolean => "boolean",
            ColumnType::Json => "json",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// The type as the database declares it.
    pub declared: String,
    pub not_null: bool,
    pub primary_key: bool,
    pub system: bool,
    /// PostgreSQL stores it in a type the driver does not decode (`uuid`, `timestamptz`,
    /// `numeric`, arrays…): it is read through a cast to its column type and written through a
    /// cast back (see `query::compile::select_column` and `bind`).
    #[serde(skip)]
    pub converted: bool,
    /// On SQLite, the form a text column declared `DATE`, `TIMESTAMP`, `TIME` or `UUID` must
    /// hold (PostgreSQL checks its own types).
    #[serde(skip)]
    pub text_format: Option<TextFormat>,
}

/// Metadata of a table that Ferrobase manages as a collection.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionMeta {
    pub rules: Rules,
    /// Per-field validation rules.
    pub field_rules: super::validation::FieldRules,
    /// The fields the search index covers, as last built (`None`: never built).
    #[serde(skip)]
    pub search_index: Option<Vec<String>>,
    /// The relations the collection's fields hold: a write's ids must name live records of
    /// their targets, and a `many` one's length is bounded.
    #[serde(skip)]
    pub relations: Vec<RelationField>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A relation held by a field of a collection (see [`super::relations`]).
#[derive(Debug, Clone)]
pub struct RelationField {
    pub field: String,
    /// The collection whose record ids the field holds.
    pub target: String,
    /// A JSON array of ids rather than one id.
    pub many: bool,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    /// `Some` for collections made by Ferrobase; `None` for other tables.
    pub collection: Option<CollectionMeta>,
    /// The access rules an admin set on a table that is not a collection (`_fb_table_rules`).
    pub table_rules: Option<Rules>,
    /// The table's single-column foreign keys.
    pub foreign_keys: Vec<ForeignKey>,
    /// Bumped by every change Ferrobase makes that can alter how a write must be planned
    /// (rules, validation, relations to or from it, fields dropped; see [`schema_change_stmts`]);
    /// each write transaction checks it against the plan it runs.
    pub schema_version: i64,
    /// A SQLite virtual table (FTS5, R*Tree…): SQLite takes no `RETURNING` on its updates and
    /// deletes, so it is read and inserted into only.
    pub virtual_table: bool,
}

/// A single-column foreign key: `column` refers to `target_column` of `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The constraint's name: PostgreSQL's own, or on SQLite (whose keys have none)
    /// PostgreSQL's default `{table}_{column}_fkey`, so that one hint names it on both.
    pub name: String,
    pub column: String,
    pub target: String,
    /// `None` when the key refers to the target's primary key without naming it (SQLite).
    pub target_column: Option<String>,
}

impl Column {
    /// A column with no constraints: for result columns and tests.
    pub fn new(name: &str, ty: ColumnType) -> Self {
        Column {
            name: name.into(),
            ty,
            declared: String::new(),
            not_null: false,
            primary_key: false,
            system: false,
            converted: false,
            text_format: None,
        }
    }
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The access rules in force: a collection's, an admin's rules for another table, or
    /// the defaults.
    pub fn access_rules(&self) -> &Rules {
        static DEFAULT: std::sync::OnceLock<Rules> = std::sync::OnceLock::new();
        match (&self.collection, &self.table_rules) {
            (Some(meta), _) => &meta.rules,
            (None, Some(rules)) => rules,
            (None, None) => DEFAULT.get_or_init(Rules::default),
        }
    }

    /// The column a single row is addressed by: `_id` for a collection, otherwise the
    /// primary key when it is a single column.
    pub fn key_column(&self) -> Option<&Column> {
        if self.collection.is_some() {
            return self.column("_id");
        }
        let mut keys = self.columns.iter().filter(|c| c.primary_key);
        match (keys.next(), keys.next()) {
            (Some(key), None) => Some(key),
            _ => None,
        }
    }

    /// A column whose name differs from `name` only in case (SQLite would treat them as one).
    pub fn column_ignoring_case(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// The cached catalog. Locks are held only for map look-ups, never across an await.
pub struct Catalog {
    db: Db,
    cached: RwLock<Cached>,
    /// Numbers the re-reads in the order they begin.
    reads_begun: AtomicU64,
    /// On PostgreSQL, where a table found changed on a re-read is announced to the other
    /// instances (see [`super::feed_pg::CATALOG_NEWS`]).
    announcer: Option<super::feed_pg::Announcer>,
}

/// The tables as last read, and which re-read stored what. Re-reads run side by side (after
/// each schema change, on news, periodically) and end in any order; one that began earlier
/// may have missed a change that a later one saw, so it never overwrites the later one's
/// result: a field added by one request would otherwise be forgotten when an older re-read,
/// started for another request, finished last.
#[derive(Default)]
struct Cached {
    tables: HashMap<String, Arc<Table>>,
    /// The number of the one-table re-read that stored a name's table (or its absence, for
    /// a table that was known), since the last whole re-read.
    stored_by: HashMap<String, u64>,
    /// The number of the whole re-read stored last.
    whole_read: u64,
}

impl Cached {
    /// Whether what re-read `read` found of `name` is newer than what is stored.
    fn is_newer(&self, name: &str, read: u64) -> bool {
        read > self.whole_read && self.stored_by.get(name).is_none_or(|&by| read > by)
    }
}

impl Catalog {
    pub async fn load(db: Db, announcer: Option<super::feed_pg::Announcer>) -> Result<Catalog, DbError> {
        let catalog = Catalog { db, cached: RwLock::new(Cached::default()), reads_begun: AtomicU64::new(0), announcer };
        catalog.reload_all().await?;
        Ok(catalog)
    }

    /// The cached table, without touching the database.
    pub fn get(&self, name: &str) -> Option<Arc<Table>> {
        self.cached.read().expect("catalog lock").tables.get(name).cloned()
    }

    /// The table, re-reading it from the database when the cache does not have it (it may
    /// have been made with plain SQL or by another instance).
    pub async fn lookup(&self, name: &str) -> Result<Option<Arc<Table>>, DbError> {
        if let Some(table) = self.get(name) {
            return Ok(Some(table));
        }
        if names::is_internal_table(name) {
            return Ok(None);
        }
        // PostgreSQL's names have at most 63 bytes (and a longer one cannot even be looked up),
        // and no name holds NUL (PostgreSQL's text cannot even carry it to the lookup).
        if (self.db.dialect() == Dialect::Postgres && name.len() > 63) || name.contains('\0') {
            return Ok(None);
        }
        self.refresh(name).await
    }

    /// Every exposed table, sorted by name.
    pub fn list(&self) -> Vec<Arc<Table>> {
        let mut tables: Vec<_> = self.cached.read().expect("catalog lock").tables.values().cloned().collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        tables
    }

    /// Re-reads one table from the database; forgets it when it no longer exists. A table
    /// found changed (made, altered, given other rules, dropped) is announced to the other
    /// instances, which read it again at once.
    pub async fn refresh(&self, name: &str) -> Result<Option<Arc<Table>>, DbError> {
        let (table, changed) = self.reread(name).await?;
        if let (true, Some(announcer)) = (changed, &self.announcer) {
            let news = announcer.news_stmt(super::feed_pg::CATALOG_NEWS, Some(name));
            if let Err(err) = self.db.write(news).await {
                // The others still read it again at their periodic re-read of the catalog.
                tracing::warn!(%err, table = name, "announcing a changed table failed");
            }
        }
        Ok(table)
    }

    /// [`Catalog::refresh`] on news from another instance, announcing nothing.
    pub async fn refresh_quietly(&self, name: &str) -> Result<Option<Arc<Table>>, DbError> {
        Ok(self.reread(name).await?.0)
    }

    /// The table as the database has it now, and whether that differs from the cached one.
    async fn reread(&self, name: &str) -> Result<(Option<Arc<Table>>, bool), DbError> {
        let read = self.begin_read();
        let mut loaded = self.introspect(Some(name)).await?;
        let table = loaded.remove(name).map(Arc::new);
        let mut cached = self.cached.write().expect("catalog lock");
        if !cached.is_newer(name, read) {
            // A re-read that began later has stored what it found, which is at least as new.
            return Ok((cached.tables.get(name).cloned(), false));
        }
        let before = match &table {
            Some(t) => cached.tables.insert(name.to_owned(), t.clone()),
            None => cached.tables.remove(name),
        };
        // Names never known are not remembered: a flood of look-ups of missing tables must
        // not grow the catalog.
        if table.is_some() || before.is_some() {
            cached.stored_by.insert(name.to_owned(), read);
        }
        // Tables are compared whole (columns, keys, rules, validation): this runs only when a
        // table changed or was not known.
        let changed = format!("{before:?}") != format!("{table:?}");
        Ok((table, changed))
    }

    /// Re-reads every table.
    pub async fn reload_all(&self) -> Result<(), DbError> {
        let read = self.begin_read();
        let loaded = self.introspect(None).await?;
        let mut tables: HashMap<String, Arc<Table>> = loaded.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        let mut cached = self.cached.write().expect("catalog lock");
        if read <= cached.whole_read {
            return Ok(());
        }
        // Tables re-read one by one after this began keep what those re-reads found.
        let later: HashMap<String, u64> = cached.stored_by.drain().filter(|&(_, by)| by > read).collect();
        for name in later.keys() {
            match cached.tables.get(name) {
                Some(table) => tables.insert(name.clone(), table.clone()),
                None => tables.remove(name),
            };
        }
        *cached = Cached { tables, stored_by: later, whole_read: read };
        Ok(())
    }

    fn begin_read(&self) -> u64 {
        self.reads_begun.fetch_add(1, Ordering::SeqCst) + 1
    }

    async fn introspect(&self, only: Option<&str>) -> Result<HashMap<String, Table>, DbError> {
        let dialect = self.db.dialect();
        let results = self.db.read_many(introspection(dialect, only)).await?;
        Ok(tables_from(dialect, &results))
    }
}

/// The statements that open a schema change of `tables` (which exist), first in its
/// transaction: on PostgreSQL the tables are locked against writes, in name order (`SHARE ROW
/// EXCLUSIVE`: reads go on), so that the writes under way finish first and later ones wait
/// for the change; then their schema versions go up (see [`bump_schema_versions`]).
pub fn schema_change_stmts(dialect: Dialect, tables: &[&str]) -> Vec<Stmt> {
    let mut stmts: Vec<Stmt> = lock_for_schema_change(dialect, tables).into_iter().collect();
    stmts.extend(bump_schema_versions(dialect, tables));
    stmts
}

/// PostgreSQL: the statement that locks `tables` (which must exist) against writes, in name
/// order, until the schema change's transaction ends.
pub fn lock_for_schema_change(dialect: Dialect, tables: &[&str]) -> Option<Stmt> {
    let names = in_name_order(tables);
    if dialect != Dialect::Postgres || names.is_empty() {
        return None;
    }
    let list: Vec<String> = names.iter().map(|n| super::sql::quote_ident(n)).collect();
    Some(Stmt::new(format!("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", list.join(", ")), vec![]))
}

/// The statements that raise the schema versions of `tables`: a write planned on an older
/// version is planned again (see the write executor). Their data versions go up too, which
/// drops the counts kept of them (PostgreSQL's count cache). Versions are never removed: a
/// collection dropped and made again under its name keeps counting up, so that a plan made on
/// the old one never passes for a plan of the new one.
pub fn bump_schema_versions(dialect: Dialect, tables: &[&str]) -> Vec<Stmt> {
    const BUMP: &str = "INSERT INTO _fb_table_versions (name, version, schema_version) VALUES (?, 1, 1) \
        ON CONFLICT (name) DO UPDATE SET version = _fb_table_versions.version + 1, \
        schema_version = _fb_table_versions.schema_version + 1";
    in_name_order(tables).into_iter().map(|name| Stmt::fixed(dialect, BUMP, vec![name.into()])).collect()
}

/// `tables` sorted, each once: the order in which a schema change takes their locks and rows,
/// so that two changes of the same tables wait for each other instead of deadlocking.
fn in_name_order<'a>(tables: &[&'a str]) -> Vec<&'a str> {
    let mut names = tables.to_vec();
    names.sort_unstable();
    names.dedup();
    names
}

/// One table as the transaction `tx` sees it (a collection it has just created, say), read
/// the way the catalog reads tables.
pub async fn table_in<T: Tx>(tx: &mut T, name: &str) -> Result<Option<Table>, DbError> {
    let dialect = tx.dialect();
    let mut results = Vec::new();
    for stmt in introspection(dialect, Some(name)) {
        results.push(tx.run(&stmt).await?);
    }
    Ok(tables_from(dialect, &results).remove(name))
}

/// The statements that read the tables (or the one table `only`): schema versions, columns,
/// collections, tables' rules, foreign keys, `many` relations. The versions come first: on
/// PostgreSQL each statement sees what was committed when it began, so what the others read
/// is at least as new as the version, never older (a write planned on it may be re-planned
/// for nothing, never run on a plan older than its version says).
fn introspection(dialect: Dialect, only: Option<&str>) -> Vec<Stmt> {
    let filter: Vec<Value> = only.map(|n| vec![n.into()]).unwrap_or_default();
    vec![
        Stmt::new(schema_versions_sql(dialect, only.is_some()), filter.clone()),
        Stmt::new(columns_sql(dialect, only.is_some()), filter.clone()),
        Stmt::new(collections_sql(dialect, only.is_some()), filter.clone()),
        Stmt::new(table_rules_sql(dialect, only.is_some()), filter.clone()),
        Stmt::new(foreign_keys_sql(dialect, only.is_some()), filter.clone()),
        Stmt::new(relations_sql(dialect, only.is_some()), filter),
    ]
}

/// The tables the results of [`introspection`]'s statements describe.
fn tables_from(dialect: Dialect, results: &[Rows]) -> HashMap<String, Table> {
    let [versions, columns, collections, table_rules, foreign_keys, relations] = results else {
        return HashMap::new();
    };
    let mut tables = tables_of(dialect, columns);
    for row in &versions.rows {
        let [name, version] = &row[..] else { continue };
        if let Some(table) = name.as_text().and_then(|n| tables.get_mut(n)) {
            table.schema_version = version.as_int().unwrap_or(0);
        }
    }
    add_collections(&mut tables, collections);
    for row in &table_rules.rows {
        let [name, rules] = &row[..] else { continue };
        let Some(table) = name.as_text().and_then(|n| tables.get_mut(n)) else { continue };
        if table.collection.is_none() {
            table.table_rules = serde_json::from_value(rules.as_json()).ok();
        }
    }
    add_foreign_keys(&mut tables, foreign_keys);
    for row in &relations.rows {
        let [collection, field, target, many] = &row[..] else { continue };
        let Some(meta) = collection.as_text().and_then(|n| tables.get_mut(n)).and_then(|t| t.collection.as_mut())
        else {
            continue;
        };
        let (Some(field), Some(target)) = (field.text(), target.text()) else { continue };
        meta.relations.push(RelationField { field, target, many: many.as_bool() });
    }
    tables
}

/// The tables and their columns, from `(table, column, declared type, not null, key,
/// virtual)` rows. Ferrobase's own tables and columns (the search column) are never exposed.
fn tables_of(dialect: Dialect, columns: &Rows) -> HashMap<String, Table> {
    let mut tables: HashMap<String, Table> = HashMap::new();
    for row in &columns.rows {
        let [table, column, declared, not_null, pk, virtual_table] = &row[..] else {
            continue;
        };
        let (Some(table), Some(column)) = (table.as_text(), column.as_text()) else {
            continue;
        };
        if names::is_internal_table(table) || column.starts_with("_fb_") {
            continue;
        }
        let declared = declared.as_text().unwrap_or("").to_owned();
        let entry = tables.entry(table.to_owned()).or_insert_with(|| Table {
            name: table.to_owned(),
            columns: Vec::new(),
            collection: None,
            table_rules: None,
            foreign_keys: Vec::new(),
            schema_version: 0,
            virtual_table: truthy(virtual_table),
        });
        entry.columns.push(Column {
            name: column.to_owned(),
            ty: ColumnType::from_declared(&declared),
            converted: dialect == Dialect::Postgres && !decoded_natively(&declared),
            text_format: if dialect == Dialect::Sqlite { TextFormat::of(&declared) } else { None },
            declared,
            not_null: truthy(not_null),
            primary_key: truthy(pk),
            system: false,
        });
    }
    tables
}

/// Marks the tables that are collections, with their rules, field rules and search index.
fn add_collections(tables: &mut HashMap<String, Table>, collections: &Rows) {
    for row in &collections.rows {
        let [name, rules, created, updated, field_rules, search_index] = &row[..] else {
            continue;
        };
        let Some(table) = name.as_text().and_then(|n| tables.get_mut(n)) else {
            continue;
        };
        // Another program renamed or dropped a system column: every statement of a collection
        // names them, so the table is served as the plain table it now is (the tables
        // surface) rather than refused as a collection for good.
        if let Some(missing) = names::SYSTEM_COLUMNS.iter().find(|c| table.column(c).is_none()) {
            tracing::warn!(table = %table.name, column = missing, "a collection lacks a system column; served as a plain table");
            continue;
        }
        let rules = match rules {
            Value::Json(v) => serde_json::from_value(v.clone()).ok(),
            Value::Text(s) => serde_json::from_str(s).ok(),
            _ => None,
        };
        let mut field_rules: super::validation::FieldRules = if field_rules.is_null() {
            Default::default()
        } else {
            serde_json::from_value(field_rules.as_json()).unwrap_or_default()
        };
        if let Err(err) = super::validation::prepare(&mut field_rules) {
            tracing::warn!(table = %table.name, %err, "stored field rules are invalid; ignoring them");
            field_rules.clear();
        }
        table.collection = Some(CollectionMeta {
            rules: rules.unwrap_or_default(),
            field_rules,
            search_index: serde_json::from_value(search_index.as_json()).ok(),
            relations: Vec::new(),
            created_at: created.as_int().unwrap_or(0),
            updated_at: updated.as_int().unwrap_or(0),
        });
        for col in &mut table.columns {
            col.system = names::is_system_column(&col.name);
        }
    }
}

/// The single-column foreign keys, from `(table, key id, part, column, target, target
/// column, constraint name)` rows; multi-column keys (a second part, `seq` > 0) are left out.
fn add_foreign_keys(tables: &mut HashMap<String, Table>, keys: &Rows) {
    let multi: Vec<(String, i64)> = keys
        .rows
        .iter()
        .filter(|r| r[2].as_int().unwrap_or(0) > 0)
        .filter_map(|r| Some((r[0].text()?, r[1].as_int()?)))
        .collect();
    for row in &keys.rows {
        let [table, id, _, column, target, target_column, constraint] = &row[..] else { continue };
        let (Some(name), Some(column), Some(target)) = (table.as_text(), column.as_text(), target.as_text()) else {
            continue;
        };
        if multi.iter().any(|(t, i)| t == name && Some(*i) == id.as_int()) {
            continue;
        }
        let Some(table) = tables.get_mut(name) else { continue };
        let key = ForeignKey {
            name: constraint.as_text().map_or_else(|| format!("{name}_{column}_fkey"), str::to_owned),
            column: column.to_owned(),
            target: target.to_owned(),
            target_column: target_column.as_text().map(str::to_owned),
        };
        if !table.foreign_keys.contains(&key) {
            table.foreign_keys.push(key);
        }
    }
}

/// Whether the PostgreSQL driver decodes values of this declared type (as `format_type`
/// spells it) into a column type as they are.
fn decoded_natively(declared: &str) -> bool {
    let base = declared.split('(').next().unwrap_or("").trim();
    matches!(
        base,
        "text"
            | "character varying"
            | "character"
            | "name"
            | "boolean"
            | "smallint"
            | "integer"
            | "bigint"
            | "oid"
            | "real"
            | "double precision"
            | "json"
            | "jsonb"
    )
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        _ => false,
    }
}

fn columns_sql(dialect: Dialect, one: bool) -> String {
    match dialect {
        // The shadow tables that hold a virtual table's data are left out: a write to them
        // would corrupt it.
        Dialect::Sqlite => format!(
            "SELECT m.name, p.name, p.type, p.\"notnull\", p.pk, l.type = 'virtual' FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p JOIN pragma_table_list l ON l.name = m.name AND l.schema = 'main' \
             WHERE m.type = 'table' AND l.type <> 'shadow' {} ORDER BY m.name, p.cid",
            if one { "AND m.name = ?" } else { "" }
        ),
        Dialect::Postgres => format!(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
             COALESCE((SELECT true FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY(i.indkey)), false), \
             false \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') {} ORDER BY c.relname, a.attnum",
            if one { "AND c.relname = $1" } else { "" }
        ),
    }
}

fn collections_sql(dialect: Dialect, one: bool) -> String {
    let filter = where_name(dialect, one);
    format!("SELECT name, rules, created_at, updated_at, field_rules, search_index FROM _fb_collections{filter}")
}

/// The filter of a system table's rows to the one table asked about (`one`), if any.
fn where_name(dialect: Dialect, one: bool) -> &'static str {
    match (one, dialect) {
        (false, _) => "",
        (true, Dialect::Sqlite) => " WHERE name = ?",
        (true, Dialect::Postgres) => " WHERE name = $1",
    }
}

fn schema_versions_sql(dialect: Dialect, one: bool) -> String {
    let filter = where_name(dialect, one);
    format!("SELECT name, schema_version FROM _fb_table_versions{filter}")
}

fn table_rules_sql(dialect: Dialect, one: bool) -> String {
    let filter = where_name(dialect, one);
    format!("SELECT name, rules FROM _fb_table_rules{filter}")
}

/// The relations as `(collection, field, target, many)`.
fn relations_sql(dialect: Dialect, one: bool) -> String {
    let filter = match (one, dialect) {
        (false, _) => "",
        (true, Dialect::Sqlite) => " WHERE collection = ?",
        (true, Dialect::Postgres) => " WHERE collection = $1",
    };
    format!("SELECT collection, field, target, many FROM _fb_relations{filter}")
}

/// Foreign keys as `(table, key id, part, column, target, target column, constraint name)`.
fn foreign_keys_sql(dialect: Dialect, one: bool) -> String {
    match dialect {
        Dialect::Sqlite => format!(
            "SELECT m.name, f.id, f.seq, f.\"from\", f.\"table\", f.\"to\", NULL FROM sqlite_master m \
             JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' {} ORDER BY m.name, f.id, f.seq",
            if one { "AND m.name = ?" } else { "" }
        ),
        Dialect::Postgres => format!(
            "SELECT cl.relname::text, 0::bigint, 0::bigint, a.attname::text, cf.relname::text, af.attname::text, \
             c.conname::text \
             FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid \
             JOIN pg_namespace n ON n.oid = cl.relnamespace JOIN pg_class cf ON cf.oid = c.confrelid \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
             JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1] \
             WHERE c.contype = 'f' AND n.nspname = current_schema() AND array_length(c.conkey, 1) = 1 {} \
             ORDER BY cl.relname, c.conname",
            if one { "AND cl.relname = $1" } else { "" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_to_column_types() {
        for (declared, ty) in [
            ("TEXT", ColumnType::Text),
            ("character varying(20)", ColumnType::Text),
            ("INTEGER", ColumnType::Integer),
            ("bigint", ColumnType::Integer),
            ("REAL", ColumnType::Real),
            ("double precision", ColumnType::Real),
            ("numeric(10,2)", ColumnType::Real),
            ("BOOLEAN", ColumnType::Boolean),
            ("JSON", ColumnType::Json),
            ("integer[]", ColumnType::Json),
            ("boolean[]", ColumnType::Json),
            ("timestamp with time zone", ColumnType::Text),
            ("int4range", ColumnType::Text),
            ("int8multirange", ColumnType::Text),
            ("int2vector", ColumnType::Text),
            ("uuid", ColumnType::Text),
            ("jsonb", ColumnType::Json),
            ("", ColumnType::Text),
        ] {
            assert_eq!(ColumnType::from_declared(declared), ty, "{declared}");
        }
        for native in ["text", "character varying(20)", "bigint", "double precision", "jsonb", "boolean"] {
            assert!(decoded_natively(native), "{native}");
        }
        for converted in ["uuid", "timestamp with time zone", "numeric(10,2)", "integer[]", "date", "\"MyType\""] {
            assert!(!decoded_natively(converted), "{converted}");
        }
    }

    #[test]
    fn json_values_infer_types() {
        use serde_json::json;
        assert_eq!(ColumnType::infer(&json!("x")), ColumnType::Text);
        assert_eq!(ColumnType::infer(&json!(3)), ColumnType::Integer);
        assert_eq!(ColumnType::infer(&json!(3.5)), ColumnType::Real);
        assert_eq!(ColumnType::infer(&json!(true)), ColumnType::Boolean);
        assert_eq!(ColumnType::infer(&json!([1])), ColumnType::Json);
        assert_eq!(ColumnType::infer(&json!({"a": 1})), ColumnType::Json);
    }
}
