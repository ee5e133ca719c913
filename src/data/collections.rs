//! Collection management: create, change rules, drop, columns and indexes. Every schema change
//! refreshes the catalog before it returns.

use std::sync::Arc;

use serde::Serialize;

use super::access::{Rules, RulesPatch};
use super::catalog::{ColumnType, Table, bump_schema_versions, lock_for_schema_change, schema_change_stmts};
use super::query::compile;
use super::sql::{SqlBuilder, quote_ident};
use super::{DbError, Dialect, Rows, Stmt, Store, Value, names, search};
use crate::error::ApiError;
use crate::util::now_ms;

/// An index as the admin API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IndexInfo {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
    /// The primary key's index, which cannot be dropped.
    pub primary: bool,
}

impl Store {
    /// Creates a collection with its system columns and, optionally, typed fields.
    pub async fn create_collection(
        &self,
        name: &str,
        rules: Rules,
        fields: &[(String, ColumnType)],
    ) -> Result<Arc<Table>, ApiError> {
        let stmts = self.collection_stmts(name, &rules, fields).await?;
        self.db.write_many(stmts).await.map_err(|err| creation_error(name, err))?;
        self.refreshed(name).await
    }

    /// The statements that create the collection `name` (its table and its row in
    /// `_fb_collections`), once its name and fields are checked; 409 when it exists.
    pub(super) async fn collection_stmts(
        &self,
        name: &str,
        rules: &Rules,
        fields: &[(String, ColumnType)],
    ) -> Result<Vec<Stmt>, ApiError> {
        names::check_collection_name(name)?;
        if fields.len() + names::SYSTEM_COLUMNS.len() > crate::limits::MAX_COLUMNS {
            return Err(ApiError::bad_request(format!(
                "a collection has at most {} fields (MAX_COLUMNS)",
                crate::limits::MAX_COLUMNS
            )));
        }
        for (field, _) in fields {
            if names::is_system_column(field) {
                return Err(ApiError::bad_field(field, format!("'{field}' is a system field and always exists")));
            }
            names::check_field_name(field)?;
        }
        for (i, (a, _)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(b, _)| a.eq_ignore_ascii_case(b)) {
                return Err(ApiError::bad_field(a, format!("field '{a}' is given twice")));
            }
        }
        if self.catalog.lookup(name).await?.is_some() {
            return Err(already_exists(name));
        }
        let collections = self.catalog.list().iter().filter(|t| t.collection.is_some()).count();
        if collections >= crate::limits::MAX_COLLECTIONS {
            return Err(ApiError::bad_request(format!(
                "there are {collections} collections, the most there may be (MAX_COLLECTIONS); drop one first"
            )));
        }
        let dialect = self.db.dialect();
        let int = dialect.type_name(ColumnType::Integer);
        let mut ddl = format!(
            "CREATE TABLE {} (\"_id\" TEXT PRIMARY KEY NOT NULL, \"_created_at\" {int} NOT NULL, \
             \"_updated_at\" {int} NOT NULL, \"_owner_id\" TEXT, \"_deleted_at\" {int}",
            quote_ident(name)
        );
        for (field, ty) in fields {
            ddl.push_str(&format!(", {} {}", quote_ident(field), dialect.type_name(*ty)));
        }
        ddl.push(')');
        let now = now_ms();
        let mut insert = SqlBuilder::new(dialect);
        insert.push("INSERT INTO _fb_collections (name, rules, created_at, updated_at) VALUES (");
        insert.param(name.into()).push(", ").param(rules_value(rules)).push(", ");
        insert.param(now.into()).push(", ").param(now.into()).push(")");
        // A table of this name dropped outside Ferrobase leaves its metadata behind: once the
        // CREATE TABLE has succeeded, that is stale, and would otherwise keep the name taken.
        let stale = [
            self.db.stmt("DELETE FROM _fb_collections WHERE name = ?", vec![name.into()]),
            self.db.stmt("DELETE FROM _fb_relations WHERE collection = ?", vec![name.into()]),
        ];
        // The search index is built when the collection is first searched (`searchable`).
        let mut stmts = vec![Stmt::new(ddl, vec![])];
        stmts.extend(stale);
        stmts.push(insert.finish());
        stmts.extend(bump_schema_versions(dialect, &[name]));
        Ok(stmts)
    }

    /// Changes some of a collection's access rules.
    /// A table made outside Ferrobase gets its rules stored in `_fb_table_rules`.
    pub async fn update_rules(&self, name: &str, patch: RulesPatch) -> Result<Arc<Table>, ApiError> {
        let table = match self.collection(name).await {
            Ok(table) => table,
            Err(ApiError::NotFound(_)) => match self.catalog.lookup(name).await? {
                Some(table) => return self.update_table_rules(&table, patch).await,
                None => return Err(ApiError::not_found(format!("collection or table '{name}' not found"))),
            },
            Err(ApiError::BadRequest { .. }) => match self.catalog.lookup(name).await? {
                Some(table) => return self.update_table_rules(&table, patch).await,
                None => return Err(ApiError::not_found(format!("table '{name}' not found"))),
            },
            Err(err) => return Err(err),
        };
        let mut rules = table.collection.as_ref().map(|c| c.rules.clone()).unwrap_or_default();
        rules.apply(patch);
        let mut b = SqlBuilder::new(self.db.dialect());
        b.push("UPDATE _fb_collections SET rules = ").param(rules_value(&rules));
        b.push(", updated_at = ").param(now_ms().into()).push(" WHERE name = ").param(name.into());
        self.schema_change(&[name], vec![b.finish()]).await?;
        self.refreshed(name).await
    }

    async fn update_table_rules(&self, table: &Table, patch: RulesPatch) -> Result<Arc<Table>, ApiError> {
        let mut rules = table.access_rules().clone();
        rules.apply(patch);
        let mut b = SqlBuilder::new(self.db.dialect());
        b.push("INSERT INTO _fb_table_rules (name, rules, updated_at) VALUES (").param(table.name.as_str().into());
        b.push(", ").param(rules_value(&rules)).push(", ").param(now_ms().into());
        b.push(") ON CONFLICT (name) DO UPDATE SET rules = EXCLUDED.rules, updated_at = EXCLUDED.updated_at");
        self.schema_change(&[&table.name], vec![b.finish()]).await?;
        self.catalog
            .refresh(&table.name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("table '{}' not found", table.name)))
    }

    /// Drops a collection with all its records, their files, and the relations from and to it.
    pub async fn drop_collection(&self, name: &str) -> Result<(), ApiError> {
        let table = self.collection(name).await?;
        // The collections whose relations point here know fewer `many` fields afterwards.
        let sources: Vec<String> =
            self.list_relations().await?.into_iter().filter(|r| r.target == name).map(|r| r.collection).collect();
        let mut delete = SqlBuilder::new(self.db.dialect());
        delete.push("DELETE FROM _fb_collections WHERE name = ").param(name.into());
        let changed: Vec<&str> = std::iter::once(name).chain(sources.iter().map(String::as_str)).collect();
        let mut stmts = schema_change_stmts(self.db.dialect(), &changed);
        stmts.extend(search::drop_stmts(self.db.dialect(), &table.name));
        stmts.push(Stmt::new(format!("DROP TABLE {}", quote_ident(&table.name)), vec![]));
        stmts.push(delete.finish());
        stmts.push(
            self.db
                .stmt("DELETE FROM _fb_relations WHERE collection = ? OR target = ?", vec![name.into(), name.into()]),
        );
        // Its records' files go with them, as with a record deleted for good: their rows now,
        // their blobs through the trash that the file store's sweeper empties.
        stmts.push(self.db.stmt(
            "INSERT INTO _fb_blob_trash (blob, not_before) SELECT blob, 0 FROM _fb_files WHERE collection = ? \
             ON CONFLICT (blob) DO NOTHING",
            vec![name.into()],
        ));
        stmts.push(self.db.stmt("DELETE FROM _fb_files WHERE collection = ?", vec![name.into()]));
        // (The schema versions' bump also keeps counts of the dropped table from passing for
        // those of a new one of its name.)
        self.db.write_many(stmts).await?;
        self.catalog.refresh(name).await?;
        for source in sources {
            self.catalog.refresh(&source).await?;
        }
        Ok(())
    }

    /// Adds columns; a column another request added meanwhile is not an error.
    pub async fn add_columns(&self, name: &str, columns: &[(String, ColumnType)]) -> Result<Arc<Table>, ApiError> {
        if let Some(table) = self.catalog.get(name) {
            super::records::check_new_field_count(&table, columns.len())?;
        }
        let mut stmts = add_column_stmts(self.db.dialect(), name, columns);
        stmts.extend(self.counts_outdated(name));
        let result = self.db.write_many(stmts).await;
        let table = self.refreshed(name).await?;
        if let Err(err) = result
            && columns.iter().any(|(c, _)| table.column(c).is_none())
        {
            return Err(err.into());
        }
        match search::fields_to_reindex(&table, &[]) {
            Some(fields) => self.rebuild_search_index(name, &fields).await,
            None => Ok(table),
        }
    }

    /// Drops a field. System fields cannot be dropped; indexes on the field go with it.
    pub async fn drop_column(&self, name: &str, column: &str) -> Result<Arc<Table>, ApiError> {
        let table = self.collection(name).await?;
        if names::is_system_column(column) {
            return Err(ApiError::bad_request(format!("'{column}' is a system field and cannot be dropped")));
        }
        let Some(col) = table.column(column) else {
            return Err(ApiError::not_found(format!("field '{column}' not found in '{name}'")));
        };
        // A search index goes first (SQLite's triggers name the field) and is built again over
        // the fields that remain.
        let dialect = self.db.dialect();
        // A relation held in the field changes how deletes of its target's records are planned.
        let targets: Vec<String> = self
            .list_relations()
            .await?
            .into_iter()
            .filter(|r| r.collection == name && r.field == col.name)
            .map(|r| r.target)
            .collect();
        let changed: Vec<&str> = std::iter::once(name).chain(targets.iter().map(String::as_str)).collect();
        let mut stmts = schema_change_stmts(dialect, &changed);
        let indexed = table.collection.as_ref().is_some_and(|c| c.search_index.is_some());
        if indexed {
            stmts.extend(search::drop_stmts(dialect, name));
        }
        stmts.extend(
            self.list_indexes(name)
                .await?
                .into_iter()
                .filter(|ix| ix.columns.iter().any(|c| c == &col.name))
                .map(|ix| Stmt::new(format!("DROP INDEX {}", quote_ident(&ix.name)), vec![])),
        );
        stmts.push(Stmt::new(
            format!("ALTER TABLE {} DROP COLUMN {}", quote_ident(name), quote_ident(&col.name)),
            vec![],
        ));
        // A relation held in the field goes with it.
        stmts.push(self.db.stmt(
            "DELETE FROM _fb_relations WHERE collection = ? AND field = ?",
            vec![name.into(), col.name.as_str().into()],
        ));
        // So do its validation rules: a field of that name added later starts with none. (The
        // schema versions' bump also drops the counts kept of filters on the field: dropped
        // and added again, it is null in every record.)
        stmts.extend(self.forget_rules_stmt(&table, &col.name)?);
        if indexed {
            let remaining: Vec<String> = search::search_fields(&table).into_iter().filter(|f| f != &col.name).collect();
            stmts.extend(search::rebuild_stmts(dialect, name, &remaining));
        }
        self.db.write_many(stmts).await.map_err(|err| match err {
            DbError::InStatement { source, .. } => ApiError::from(*source),
            other => other.into(),
        })?;
        self.refreshed(name).await
    }

    /// The indexes of a collection.
    pub async fn list_indexes(&self, name: &str) -> Result<Vec<IndexInfo>, ApiError> {
        let table = self.collection(name).await?;
        let sql = match self.db.dialect() {
            Dialect::Sqlite => {
                "SELECT il.name, il.\"unique\", il.origin = 'pk', ii.name FROM pragma_index_list(?) il \
                 JOIN pragma_index_info(il.name) ii ORDER BY il.name, ii.seqno"
            }
            Dialect::Postgres => {
                "SELECT i.relname::text, ix.indisunique, ix.indisprimary, a.attname::text FROM pg_index ix \
                 JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid \
                 JOIN pg_namespace n ON n.oid = t.relnamespace \
                 JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
                 WHERE n.nspname = current_schema() AND t.relname = $1 ORDER BY i.relname, k.ord"
            }
        };
        let rows = self.db.read(Stmt::new(sql, vec![table.name.as_str().into()])).await?;
        let mut indexes: Vec<IndexInfo> = Vec::new();
        for row in rows.rows {
            let [index, unique, primary, column] = &row[..] else {
                continue;
            };
            let (Some(index), Some(column)) = (index.as_text(), column.as_text()) else {
                continue;
            };
            match indexes.last_mut() {
                Some(last) if last.name == index => last.columns.push(column.to_owned()),
                _ => indexes.push(IndexInfo {
                    name: index.to_owned(),
                    columns: vec![column.to_owned()],
                    unique: truthy(unique),
                    primary: truthy(primary),
                }),
            }
        }
        // The search index (on the hidden `_fb_search` column) is the search's own business.
        indexes.retain(|ix| !ix.columns.iter().any(|c| c.starts_with("_fb_")));
        // Show the columns that were asked for, not the `_id` tiebreaker appended to them.
        for ix in &mut indexes {
            if !ix.unique && !ix.primary {
                for appended in ["_deleted_at", "_id"] {
                    if ix.columns.len() > 1 && ix.columns.last().is_some_and(|c| c == appended) {
                        ix.columns.pop();
                    }
                }
            }
        }
        Ok(indexes)
    }

    /// Creates an index over `columns`, of live records only (see [`index_stmt`]).
    pub async fn create_index(&self, name: &str, columns: &[String], unique: bool) -> Result<IndexInfo, ApiError> {
        let table = self.collection(name).await?;
        if columns.is_empty() {
            return Err(ApiError::bad_request("an index needs at least one column"));
        }
        let mut cols = Vec::with_capacity(columns.len());
        for c in columns {
            let col = compile::column(&table, c)?;
            if cols.contains(&col.name.as_str()) {
                return Err(ApiError::bad_request(format!("column '{c}' is given twice")));
            }
            cols.push(col.name.as_str());
        }
        let existing = self.list_indexes(name).await?;
        if existing.iter().any(|ix| ix.columns == cols) {
            return Err(ApiError::Conflict(format!("an index on ({}) already exists", cols.join(", "))));
        }
        let dialect = self.db.dialect();
        let (stmt, index_name) = index_stmt(dialect, name, &cols, unique);
        self.db.write(stmt).await.map_err(|err| match err {
            DbError::UniqueViolation(_) => duplicate_values(&cols),
            other if names_taken(&other) => index_name_taken(&index_name),
            other => other.into(),
        })?;
        if dialect == Dialect::Postgres {
            // Fresh statistics, so the planner uses the new index at once rather than after
            // autovacuum gets round to the table (or never, where it is off).
            self.db.write(Stmt::new(format!("ANALYZE {}", quote_ident(name)), vec![])).await?;
        }
        Ok(IndexInfo {
            name: index_name,
            columns: cols.iter().map(|c| (*c).to_owned()).collect(),
            unique,
            primary: false,
        })
    }

    /// Drops the index named `which`, or the single-column index on the column `which`.
    pub async fn drop_index(&self, name: &str, which: &str) -> Result<(), ApiError> {
        let indexes = self.list_indexes(name).await?;
        let index = indexes
            .iter()
            .find(|ix| ix.name == which)
            .or_else(|| indexes.iter().find(|ix| ix.columns.len() == 1 && ix.columns[0] == which && !ix.primary))
            .ok_or_else(|| ApiError::not_found(format!("no index on '{which}' in '{name}'")))?;
        if index.primary {
            return Err(ApiError::bad_request("the primary key's index cannot be dropped"));
        }
        self.db.write(Stmt::new(format!("DROP INDEX {}", quote_ident(&index.name)), vec![])).await?;
        Ok(())
    }

    /// The statement that removes `field`'s validation rules from its collection, if it has
    /// any. PostgreSQL removes them in place, so that a change another instance made to the
    /// other fields' rules is kept; SQLite's one instance knows the rules as they are.
    fn forget_rules_stmt(&self, table: &Table, field: &str) -> Result<Option<Stmt>, ApiError> {
        let Some(meta) = table.collection.as_ref() else { return Ok(None) };
        let stmt = match self.db.dialect() {
            Dialect::Postgres => self.db.stmt(
                "UPDATE _fb_collections SET field_rules = field_rules - CAST(? AS TEXT) WHERE name = ?",
                vec![field.into(), table.name.as_str().into()],
            ),
            Dialect::Sqlite if meta.field_rules.contains_key(field) => {
                let mut rules = meta.field_rules.clone();
                rules.remove(field);
                let stored = serde_json::to_value(&rules).map_err(ApiError::internal)?;
                self.db.stmt(
                    "UPDATE _fb_collections SET field_rules = ? WHERE name = ?",
                    vec![Value::Json(stored), table.name.as_str().into()],
                )
            }
            Dialect::Sqlite => return Ok(None),
        };
        Ok(Some(stmt))
    }

    /// The statement that makes the counts kept of `table` stale (PostgreSQL's count cache,
    /// see `read::counts`), for a schema change to run in its own transaction.
    fn counts_outdated(&self, table: &str) -> Option<Stmt> {
        (self.db.dialect() == Dialect::Postgres).then(|| super::read::counts::bump_stmt(table))
    }

    /// Runs `stmts`, a change of the schema of `tables`, in one transaction that opens as
    /// [`schema_change_stmts`] does (writes planned before it are planned again; only the
    /// tables the catalog knows are locked); answers the rows of `stmts`, or the failure of
    /// the statement that failed.
    pub(super) async fn schema_change(&self, tables: &[&str], stmts: Vec<Stmt>) -> Result<Vec<Rows>, DbError> {
        let dialect = self.db.dialect();
        let known: Vec<&str> = tables.iter().copied().filter(|t| self.catalog.get(t).is_some()).collect();
        let mut all: Vec<Stmt> = lock_for_schema_change(dialect, &known).into_iter().collect();
        all.extend(bump_schema_versions(dialect, tables));
        let opening = all.len();
        all.extend(stmts);
        let mut rows = self.db.write_many(all).await.map_err(|err| match err {
            DbError::InStatement { source, .. } => *source,
            other => other,
        })?;
        Ok(rows.split_off(opening))
    }

    pub(super) async fn refreshed(&self, name: &str) -> Result<Arc<Table>, ApiError> {
        self.catalog.refresh(name).await?.ok_or_else(|| ApiError::not_found(format!("collection '{name}' not found")))
    }
}

/// `ALTER TABLE … ADD COLUMN …`, one per new field.
fn add_column_stmts(dialect: Dialect, table: &str, columns: &[(String, ColumnType)]) -> Vec<Stmt> {
    columns
        .iter()
        .map(|(column, ty)| {
            let sql = format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                quote_ident(table),
                quote_ident(column),
                dialect.type_name(*ty)
            );
            Stmt::new(sql, vec![])
        })
        .collect()
}

/// `CREATE [UNIQUE] INDEX …` over `cols` (checked column names) of the live records of
/// `table`, and the index's name. It covers live records only (soft-deleted ones are left
/// out), which is what every list and count asks for; a unique index therefore lets a
/// deleted record's value be used again.
fn index_stmt(dialect: Dialect, table: &str, cols: &[&str], unique: bool) -> (Stmt, String) {
    let name = field_index_name(table, cols);
    // A non-unique index ends with `_id`, the tiebreaker of every sorted list, so that a
    // page sorted on the indexed columns is read in order straight off the index; the
    // list shows the columns asked for.
    let mut indexed: Vec<&str> = cols.to_vec();
    if !unique && !indexed.contains(&"_id") {
        indexed.push("_id");
    }
    // `_deleted_at` is always null in this partial index, but SQLite only counts from the
    // index alone (a covering scan) when the column is in it.
    if !unique && !indexed.contains(&"_deleted_at") {
        indexed.push("_deleted_at");
    }
    let column_list: Vec<String> = indexed
        .iter()
        .map(|c| match dialect {
            // Nulls first, as every sort orders them: a sorted page reads straight off the index.
            Dialect::Postgres => format!("{} NULLS FIRST", quote_ident(c)),
            Dialect::Sqlite => quote_ident(c),
        })
        .collect();
    let sql = format!(
        "CREATE {}INDEX {} ON {} ({}) WHERE \"_deleted_at\" IS NULL",
        if unique { "UNIQUE " } else { "" },
        quote_ident(&name),
        quote_ident(table),
        column_list.join(", ")
    );
    (Stmt::new(sql, vec![]), name)
}

/// A unique index refused because existing records share values.
fn duplicate_values(cols: &[&str]) -> ApiError {
    ApiError::Conflict(format!(
        "existing records have duplicate values in ({}): remove them before adding a unique index",
        cols.join(", ")
    ))
}

/// The error of creating the collection `name`: 409 when another request created it first
/// (PostgreSQL reports a table made at the same moment as a unique violation of its catalog).
pub(super) fn creation_error(name: &str, err: DbError) -> ApiError {
    match err {
        DbError::InStatement { source, .. } => creation_error(name, *source),
        DbError::UniqueViolation(_) => already_exists(name),
        // An index of another collection may have the name (one made before
        // `field_index_name`, or a PostgreSQL primary key's `posts_pkey`).
        ref taken if names_taken(taken) => ApiError::Conflict(format!(
            "'{name}' is taken: the database already holds a collection, table or index of that name"
        )),
        other => other.into(),
    }
}

fn already_exists(name: &str) -> ApiError {
    ApiError::Conflict(format!("collection '{name}' already exists"))
}

fn rules_value(rules: &Rules) -> Value {
    Value::Json(serde_json::to_value(rules).unwrap_or_default())
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true)) || matches!(v, Value::Int(i) if *i != 0)
}

/// The name of an index made on a collection's fields, `_posts_author_created_at_<hash>_idx`:
/// readable, yet one per table and column list. The hash of both tells `(a_b)` from `(a, b)`
/// and `a_b.c` from `a.b_c`, and the leading `_`, which no collection's name has, keeps it
/// from taking a future collection's name. Within PostgreSQL's 63 bytes.
pub(crate) fn field_index_name(table: &str, columns: &[&str]) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for part in std::iter::once(table).chain(columns.iter().copied()) {
        for byte in part.bytes().chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3);
        }
    }
    let mut head = format!("_{table}_{}", columns.join("_"));
    // Cut on a character's boundary: a table made with plain SQL may have any column names.
    let mut end = 63 - "_0123456789abcdef_idx".len();
    while !head.is_char_boundary(end.min(head.len())) {
        end -= 1;
    }
    head.truncate(end);
    format!("{head}_{hash:016x}_idx")
}

/// Whether a statement failed because a table or index of the name it makes exists.
fn names_taken(err: &DbError) -> bool {
    match err {
        DbError::InStatement { source, .. } => names_taken(source),
        DbError::Other(msg) | DbError::SchemaChanged(msg) => {
            msg.contains("already exists") || msg.starts_with("there is already")
        }
        _ => false,
    }
}

/// 409: an index's name is taken by a table or index made outside Ferrobase.
fn index_name_taken(index: &str) -> ApiError {
    ApiError::Conflict(format!(
        "the database already holds a table or index named '{index}' (made outside Ferrobase): drop or rename it first"
    ))
}

/// The search index's name (`posts__fb_search_idx`), as collections made before
/// [`field_index_name`] have it; shortened with a hash beyond PostgreSQL's 63 bytes.
pub(crate) fn index_name(table: &str, columns: &[&str]) -> String {
    let full = format!("{table}_{}_idx", columns.join("_"));
    if full.len() <= 63 {
        return full;
    }
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in full.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3);
    }
    let prefix: String = table.chars().take(40).collect();
    format!("{prefix}_{hash:016x}_idx")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_fit_postgres_limit() {
        assert_eq!(index_name("posts", &["a", "b"]), "posts_a_b_idx");
        let two = field_index_name("posts", &["a", "b"]);
        assert!(two.starts_with("_posts_a_b_") && two.ends_with("_idx"), "{two}");
        assert_ne!(two, field_index_name("posts", &["a_b"]));
        assert_ne!(field_index_name("a_b", &["c"]), field_index_name("a", &["b_c"]));
        for long in [field_index_name(&"t".repeat(63), &["c".repeat(63).as_str()]), field_index_name("t", &["c"; 40])] {
            assert_eq!(long.len(), 63, "{long}");
        }
        assert!(field_index_name("t", &["é".repeat(40).as_str()]).len() <= 63);
        let long = index_name(&"t".repeat(63), &["c".repeat(63).as_str()]);
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, index_name(&"t".repeat(63), &["d".repeat(63).as_str()]));
    }
}

/// What `set_field_rules` found in the existing records.
#[derive(Debug, Serialize)]
pub struct RulesReport {
    /// How many live records were checked (at most [`MAX_CHECKED`]).
    pub checked: usize,
    /// Per field, how many of them break its rules.
    pub violations: std::collections::BTreeMap<String, usize>,
}

/// The most existing records checked against new rules.
pub const MAX_CHECKED: usize = 100_000;

impl Store {
    /// Replaces a collection's field rules. A field named with a `type` that does not exist
    /// yet is added; `unique` adds a unique index. Rules that existing records break are
    /// allowed, and the answer says how many records break each.
    pub async fn set_field_rules(
        &self,
        name: &str,
        rules: serde_json::Value,
    ) -> Result<(Arc<Table>, RulesReport), ApiError> {
        use super::validation::{FieldRules, check_fits, check_value, prepare};
        let table = self.collection(name).await?;
        let mut field_rules: FieldRules =
            serde_json::from_value(rules).map_err(|e| ApiError::bad_request(format!("invalid rules: {e}")))?;
        prepare(&mut field_rules)?;
        let mut new_columns: Vec<(String, ColumnType)> = Vec::new();
        for (field, rule) in &field_rules {
            match (table.column(field), rule.rule_type()) {
                (Some(col), Some(ty)) if !ty.fits(col.ty) => {
                    return Err(ApiError::bad_field(
                        field,
                        format!(
                            "'{field}' is {}, which cannot hold a {}",
                            col.ty.name(),
                            rule.ty.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                (Some(col), _) => check_fits(field, rule, col.ty)?,
                (None, Some(ty)) => {
                    super::records::check_new_field_name(&table, field)?;
                    if let Some((other, _)) = new_columns.iter().find(|(c, _)| c.eq_ignore_ascii_case(field)) {
                        return Err(ApiError::bad_field(
                            field,
                            format!("fields '{other}' and '{field}' differ only in case"),
                        ));
                    }
                    check_fits(field, rule, ty.column_type())?;
                    new_columns.push((field.clone(), ty.column_type()));
                }
                (None, None) => {
                    return Err(ApiError::bad_field(
                        field,
                        format!("unknown field '{field}': give a type to create it"),
                    ));
                }
            }
        }
        self.apply_field_rules(&table, &field_rules, &new_columns).await?;
        let table = self.refreshed(name).await?;

        // Report what the existing records break.
        let fields: Vec<&str> = field_rules.keys().map(String::as_str).collect();
        let mut violations = std::collections::BTreeMap::new();
        let mut checked = 0;
        if !fields.is_empty() {
            let mut q = SqlBuilder::new(self.db.dialect());
            q.push("SELECT ").ident_list(fields.iter().copied()).push(" FROM ").ident(name);
            q.push(" WHERE \"_deleted_at\" IS NULL LIMIT ").param((MAX_CHECKED as i64).into());
            let rows = self.db.read(q.finish()).await?;
            let columns: Vec<&super::catalog::Column> = fields.iter().filter_map(|f| table.column(f)).collect();
            let records = super::records::Records::new(&columns, rows);
            checked = records.rows.len();
            for record in records.iter() {
                let json = serde_json::to_value(record).map_err(ApiError::internal)?;
                for (field, rule) in &field_rules {
                    if check_value(field, rule, &json[field.as_str()]).is_err() {
                        *violations.entry(field.clone()).or_insert(0) += 1;
                    }
                }
            }
        }
        Ok((table, RulesReport { checked, violations }))
    }

    /// In one transaction: the new fields, the unique indexes the rules ask for, the rules
    /// themselves and, for a searched collection given a text field, its search index. A
    /// refusal (duplicate values under a new unique rule) leaves the collection as it was.
    async fn apply_field_rules(
        &self,
        table: &Table,
        field_rules: &super::validation::FieldRules,
        new_columns: &[(String, ColumnType)],
    ) -> Result<(), ApiError> {
        let (dialect, name) = (self.db.dialect(), table.name.as_str());
        super::records::check_new_field_count(table, new_columns.len())?;
        let mut stmts = schema_change_stmts(dialect, &[name]);
        stmts.extend(add_column_stmts(dialect, name, new_columns));
        let existing = self.list_indexes(name).await?;
        // The statements that add unique indexes, by position, with their field.
        let mut unique_at: Vec<(usize, &str, String)> = Vec::new();
        for (field, rule) in field_rules {
            if rule.unique && !existing.iter().any(|ix| ix.unique && ix.columns == [field.as_str()]) {
                let (create, index) = index_stmt(dialect, name, &[field.as_str()], true);
                // The unique index replaces the admin's plain index on the field alone (which
                // may have the name it takes), and serves the same lookups.
                let plain = existing.iter().find(|ix| ix.columns == [field.as_str()] && !ix.unique && !ix.primary);
                if let Some(plain) = plain {
                    stmts.push(Stmt::new(format!("DROP INDEX {}", quote_ident(&plain.name)), vec![]));
                }
                unique_at.push((stmts.len(), field.as_str(), index));
                stmts.push(create);
            }
        }
        let stored = serde_json::to_value(field_rules).map_err(ApiError::internal)?;
        let mut b = SqlBuilder::new(dialect);
        b.push("UPDATE _fb_collections SET field_rules = ").param(Value::Json(stored));
        b.push(", updated_at = ").param(now_ms().into()).push(" WHERE name = ").param(name.into());
        stmts.push(b.finish());
        if let Some(fields) = search::fields_to_reindex(table, new_columns) {
            stmts.extend(search::rebuild_stmts(dialect, name, &fields));
        }
        if let Err(err) = self.db.write_many(stmts).await {
            let (at, source) = match err {
                DbError::InStatement { index, source } => (Some(index), *source),
                other => (None, other),
            };
            if let Some((_, field, index)) = unique_at.iter().find(|(i, ..)| Some(*i) == at) {
                match source {
                    DbError::UniqueViolation(_) => return Err(duplicate_values(&[field])),
                    ref taken if names_taken(taken) => return Err(index_name_taken(index)),
                    _ => {}
                }
            }
            let now = self.refreshed(name).await?;
            if new_columns.iter().any(|(c, _)| now.column(c).is_some()) {
                return Err(ApiError::Conflict(
                    "a field was added by another request at the same moment: try again".into(),
                ));
            }
            return Err(source.into());
        }
        if dialect == Dialect::Postgres && !unique_at.is_empty() {
            // Fresh statistics for the new indexes (as `create_index` does).
            self.db.write(Stmt::new(format!("ANALYZE {}", quote_ident(name)), vec![])).await?;
        }
        Ok(())
    }
}
