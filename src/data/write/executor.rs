//! The executor: runs a [`Plan`]'s mutations inside one transaction, step by step in the
//! order the [module](super) describes, and collects the change of every record written.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::rows::{self, key};
use super::{Mutation, Relation, Scopes, Target, WriteOptions, Written};
use crate::data::access::{self, Caller};
use crate::data::catalog::{self, Column, ColumnType, RelationField, Table};
use crate::data::collections::creation_error;
use crate::data::feed::{Actor, Change, ChangeOp, RecordData};
use crate::data::feed_pg;
use crate::data::records::{Deleted, Records, missing_columns, output_columns, record_not_found, rules, short};
use crate::data::relations::{Effect, dangling, live_records, on_delete_plan, referenced_ids, restricted};
use crate::data::sql::quote_ident;
use crate::data::tx::{Tx, TxWork};
use crate::data::{DbError, Dialect, Rows, Stmt, Value, search};
use crate::error::ApiError;
use crate::limits::MAX_CASCADE_DEPTH;

/// Everything a request's writes need, checked for access already.
pub(in crate::data) struct Plan {
    pub table: Arc<Table>,
    pub caller: Caller,
    pub mutations: Vec<Mutation>,
    /// The verdict of `table`'s field rules on each mutation (see [`super::field_checks`]),
    /// reported at step 4 as if checked there.
    pub field_checks: Vec<Result<(), ApiError>>,
    pub options: WriteOptions,
    pub scopes: Scopes,
    /// Every relation (the ones pointing at `table` matter for deletes).
    pub relations: Vec<Relation>,
    /// The collections whose records point at `table`, for the changes their effects make.
    pub related: Vec<Arc<Table>>,
    /// Each target of `table`'s relations, with the records of it that the caller may name:
    /// those it may read (`None`: none at all).
    pub reference_scopes: Vec<(Arc<Table>, Option<access::Scope>)>,
    /// This instance's name, sent with the changes to the others, and the channel they
    /// listen on (PostgreSQL).
    pub instance: String,
    pub channel: String,
}

/// What the transaction did.
#[derive(Default)]
pub(in crate::data) struct Outcome {
    pub written: Vec<Written>,
    pub changes: Vec<Change>,
    /// Columns were added: the catalog must be read again.
    pub schema_changed: bool,
}

/// Refusal of a field another request added first (the plan is made again).
const DUPLICATE_COLUMN: &str = "a field was added by another request at the same moment: try again";

/// Refusal of a plan made on rules, validation or relations that changed before its
/// transaction ran (the plan is made again, on the tables as they now are).
const SCHEMA_MOVED: &str = "the rules, validation or relations of the table changed while this request ran; try again";

/// Whether the transaction was refused because its plan was made on an older schema: a
/// field it adds was added meanwhile, or the tables' schema versions moved on.
pub(in crate::data) fn must_replan(err: &ApiError) -> bool {
    match err {
        ApiError::Unavailable(msg) => msg == DUPLICATE_COLUMN,
        ApiError::ConflictOf { message, .. } => message == SCHEMA_MOVED,
        _ => false,
    }
}

fn schema_moved() -> ApiError {
    ApiError::ConflictOf { message: SCHEMA_MOVED.into(), code: crate::error::codes::TRY_AGAIN }
}

impl TxWork for Arc<Plan> {
    type Output = Outcome;

    async fn run<T: Tx>(&self, tx: &mut T) -> Result<Outcome, ApiError> {
        match tx.dialect() {
            Dialect::Postgres => self.lock_addressed_rows(tx).await?,
            // The single writer: nothing changes the schema until this commits.
            Dialect::Sqlite => self.check_schema_versions(tx).await?,
        }
        let mut old = Vec::with_capacity(self.mutations.len());
        for (i, mutation) in self.mutations.iter().enumerate() {
            old.push(self.existing(tx, mutation).await.map_err(|e| self.at(i, e))?);
        }
        let (table, schema_changed) = self.add_fields(tx).await?;
        let values = self.validate(&table)?;
        let mut outcome = Outcome { schema_changed, ..Outcome::default() };
        for (i, ((mutation, values), old)) in self.mutations.iter().zip(values).zip(old).enumerate() {
            let (records, changes) = self.write(tx, &table, mutation, values, old).await.map_err(|e| self.at(i, e))?;
            outcome.written.push(Written { records });
            outcome.changes.extend(changes);
        }
        // PostgreSQL: kept counts of the changed tables stop holding, other instances hear of
        // the changes at the commit (and of none on a rollback), and the schema versions of
        // the changed tables are checked against the plan's.
        if tx.dialect() == Dialect::Postgres
            && let Some(stmt) = feed_pg::after_write_stmt(&self.channel, &self.instance, &outcome.changes)
        {
            let closing = tx.run(&stmt).await?;
            let versions = closing.rows.first().and_then(|row| row.get(1)).map(Value::as_json);
            self.check_versions(|name| {
                versions.as_ref().and_then(|v| v.get(name)).and_then(serde_json::Value::as_i64)
            })?;
        }
        Ok(outcome)
    }
}

/// SQLite keeps a null in a primary-key column that is not the rowid (`TEXT PRIMARY KEY`,
/// `INT PRIMARY KEY`, a composite key) when an insert leaves it out and it has no default;
/// PostgreSQL refuses such a row, and so does this, before the transaction commits.
fn refuse_null_keys(table: &Table, columns: &[&Column], rows: &Rows) -> Result<(), ApiError> {
    for (i, col) in columns.iter().enumerate().filter(|(_, c)| c.primary_key) {
        if rows.rows.iter().any(|row| row.get(i).is_some_and(Value::is_null)) {
            return Err(rows::null_key(table, col));
        }
    }
    Ok(())
}

/// Refusal of a collection another request created first (the writes run again on it).
const CREATED_MEANWHILE: &str = "the collection was created by another request at the same moment: try again";

pub(in crate::data) fn is_created_meanwhile(err: &ApiError) -> bool {
    matches!(err, ApiError::Unavailable(msg) if msg == CREATED_MEANWHILE)
}

/// The first writes of a collection that does not exist yet: `create` makes it, then the
/// writes run on it as a [`Plan`], all in one transaction.
pub(in crate::data) struct NewCollection {
    pub name: String,
    pub create: Vec<Stmt>,
    pub caller: Caller,
    pub mutations: Vec<Mutation>,
    pub options: WriteOptions,
    pub instance: String,
    pub channel: String,
}

impl TxWork for Arc<NewCollection> {
    type Output = Outcome;

    async fn run<T: Tx>(&self, tx: &mut T) -> Result<Outcome, ApiError> {
        for stmt in &self.create {
            tx.run(stmt).await.map_err(|err| match creation_error(&self.name, err) {
                ApiError::Conflict(_) => ApiError::Unavailable(CREATED_MEANWHILE.into()),
                other => other,
            })?;
        }
        // Read back as the catalog reads it, so the writes see exactly the collection they
        // will see once it is committed.
        let table = catalog::table_in(tx, &self.name)
            .await?
            .ok_or_else(|| ApiError::internal(format!("collection '{}' was not found once created", self.name)))?;
        let table = Arc::new(table);
        let scopes = super::check_rules(&table, &self.caller, &self.mutations, self.options)?;
        // A new collection has no field rules yet: nothing that could take long.
        let field_checks = super::field_checks(&table, &self.mutations);
        let plan = Plan {
            table,
            caller: self.caller.clone(),
            mutations: self.mutations.clone(),
            field_checks,
            options: self.options,
            scopes,
            relations: Vec::new(),
            related: Vec::new(),
            // A new collection holds no relations yet.
            reference_scopes: Vec::new(),
            instance: self.instance.clone(),
            channel: self.channel.clone(),
        };
        let outcome = Arc::new(plan).run(tx).await?;
        // The table is new to the catalog.
        Ok(Outcome { schema_changed: true, ..outcome })
    }
}

/// How often a record addressed by id that the caller may read but was not found changeable
/// is read again (see [`Plan::existing`]).
const REREADS_OF_A_RESTORED_RECORD: usize = 3;

impl Plan {
    /// SQLite: the schema versions of the tables the plan writes, read at the start of the
    /// transaction, must be those it was planned on.
    ///
    /// PostgreSQL checks them in the transaction's closing statement instead, at no round
    /// trip of its own: each write there bumps its tables' row of `_fb_table_versions`, which
    /// waits for a schema change under way (it bumped the row first) and then reads the
    /// version it committed; a schema change that begins later waits for this transaction
    /// (its table lock conflicts with the writes', see `catalog::schema_change_stmts`).
    async fn check_schema_versions<T: Tx>(&self, tx: &mut T) -> Result<(), ApiError> {
        let names: Vec<&str> = self.planned_versions().map(|(name, _)| name).collect();
        let mut b = crate::data::sql::SqlBuilder::new(tx.dialect());
        b.push("SELECT name, schema_version FROM _fb_table_versions WHERE name IN (");
        for (i, name) in names.iter().enumerate() {
            b.push(if i == 0 { "" } else { ", " }).param((*name).into());
        }
        b.push(")");
        let rows = tx.run(&b.finish()).await?.rows;
        self.check_versions(|name| {
            let row = rows.iter().find(|row| row[0].as_text() == Some(name));
            Some(row.and_then(|row| row[1].as_int()).unwrap_or(0))
        })
    }

    /// The tables the plan may write, each with the schema version it was planned on.
    fn planned_versions(&self) -> impl Iterator<Item = (&str, i64)> {
        std::iter::once(&self.table).chain(&self.related).map(|t| (t.name.as_str(), t.schema_version))
    }

    /// Refuses the plan when a table's version, as `current` gives it, is not the one it was
    /// planned on (a table `current` does not know was not written: it cannot matter).
    fn check_versions(&self, current: impl Fn(&str) -> Option<i64>) -> Result<(), ApiError> {
        match self.planned_versions().any(|(name, planned)| current(name).is_some_and(|now| now != planned)) {
            true => Err(schema_moved()),
            false => Ok(()),
        }
    }

    /// The error of mutation `index`, named by its index in a bulk or batch.
    fn at(&self, index: usize, err: ApiError) -> ApiError {
        super::at_index(self.options, index, err)
    }

    /// PostgreSQL: the rows that two or more mutations address by key are locked first, in key
    /// order ([`rows::lock_in_key_order`]). Batches naming the same records in other orders
    /// then take turns; a deadlock left (through relations' effects) is retried whole.
    async fn lock_addressed_rows<T: Tx>(&self, tx: &mut T) -> Result<(), ApiError> {
        let ids: Vec<&str> = self
            .mutations
            .iter()
            .filter_map(|m| match m {
                Mutation::Update { target: Target::Id(id), .. } | Mutation::Delete { target: Target::Id(id) } => {
                    Some(id.as_str())
                }
                Mutation::Restore { id } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        if ids.len() < 2 {
            return Ok(());
        }
        if let Some(stmt) = rows::lock_in_key_order(tx.dialect(), &self.table, &ids) {
            tx.run(&stmt).await?;
        }
        Ok(())
    }

    /// Every column of a row read before it changes (`_deleted_at` included).
    fn old_columns(&self) -> Result<Vec<&Column>, ApiError> {
        output_columns(&self.table, None, Deleted::Shown)
    }

    /// Step 2: the rows a mutation changes (or meets, for an upsert), read within the
    /// caller's scope. A record addressed by id must be there.
    async fn existing<T: Tx>(&self, tx: &mut T, mutation: &Mutation) -> Result<Vec<RecordData>, ApiError> {
        let (dialect, table) = (tx.dialect(), &*self.table);
        let columns = self.old_columns()?;
        let (stmt, target) = match mutation {
            Mutation::Create { upsert: None, .. } => return Ok(Vec::new()),
            Mutation::Create { fields, upsert: Some(upsert) } => {
                match rows::select_conflicting(dialect, table, &columns, fields, upsert)? {
                    Some(stmt) => (stmt, None),
                    None => return Ok(Vec::new()),
                }
            }
            Mutation::Update { target, .. } => (
                rows::select_targets(dialect, table, &columns, &self.scopes.update, self.options.deleted, target)?,
                Some(target),
            ),
            Mutation::Delete { target } => (
                rows::select_targets(dialect, table, &columns, &self.scopes.delete, self.options.deleted, target)?,
                Some(target),
            ),
            Mutation::Restore { id } => {
                let target = Target::Id(id.clone());
                (rows::select_targets(dialect, table, &columns, &self.scopes.update, Deleted::Shown, &target)?, None)
            }
        };
        let found = tx.run(&stmt).await?.rows;
        if let Mutation::Restore { id } = mutation {
            let deleted = found
                .into_iter()
                .map(|row| self.record(&columns, row))
                .find(|r| r.get("_deleted_at").is_some_and(|v| !v.is_null()));
            return match deleted {
                Some(record) => Ok(vec![record]),
                None => Err(ApiError::not_found(format!("no deleted record '{}' in '{}'", short(id), table.name))),
            };
        }
        match target {
            Some(Target::Id(id)) if found.is_empty() => {
                // On PostgreSQL each statement reads the rows committed when it starts: the
                // probe may see the record changeable again (restored by another request since
                // the first read), and a read after it then finds and locks it. A record
                // deleted and restored over and over is read a few times before the answer.
                let mut refusal = self.refusal(tx, id).await;
                for _ in 0..REREADS_OF_A_RESTORED_RECORD {
                    if !matches!(refusal, ApiError::Forbidden(_)) {
                        break;
                    }
                    let found = tx.run(&stmt).await?.rows;
                    if !found.is_empty() {
                        return Ok(found.into_iter().map(|row| self.record(&columns, row)).collect());
                    }
                    refusal = self.refusal(tx, id).await;
                }
                Err(refusal)
            }
            Some(Target::Filter(_)) if let Some(refusal) = self.options.affected.refusal(found.len()) => Err(refusal),
            _ => Ok(found.into_iter().map(|row| self.record(&columns, row)).collect()),
        }
    }

    fn record(&self, columns: &[&Column], values: Vec<Value>) -> RecordData {
        RecordData { columns: shape(columns), values }
    }

    /// Why a record addressed by id was not found: 403 when the caller may read it but not
    /// change it, otherwise 404 (never revealing a record the caller may not read).
    async fn refusal<T: Tx>(&self, tx: &mut T, id: &str) -> ApiError {
        let table = &*self.table;
        let not_found = record_not_found(&table.name, id);
        if self.options.indexed {
            return ApiError::not_found("record not found (or not yours to change)");
        }
        let Ok(scope) = access::scope(table, &rules(table).read, &self.caller) else { return not_found };
        let Ok(key) = key(table) else { return not_found };
        let probe = rows::select_targets(tx.dialect(), table, &[key], &scope, Deleted::Hidden, &Target::Id(id.into()));
        match probe {
            Ok(stmt) => match tx.run(&stmt).await {
                Ok(rows) if !rows.rows.is_empty() => ApiError::Forbidden("you may not change this record".into()),
                _ => not_found,
            },
            Err(_) => not_found,
        }
    }

    /// Step 3: the fields the writes bring that a collection lacks, added as columns (and to
    /// the search index). Answers the table as it is now.
    async fn add_fields<T: Tx>(&self, tx: &mut T) -> Result<(Arc<Table>, bool), ApiError> {
        if self.table.collection.is_none() || self.missing_fields(&self.table)?.is_empty() {
            return Ok((self.table.clone(), false));
        }
        // The catalog's copy may be behind: another request may have added fields since it was
        // read (these very ones, or names differing only in case, or enough to pass
        // MAX_COLUMNS). The table is locked against other schema changes and read again, and
        // the fields are checked against it as it is.
        let dialect = tx.dialect();
        if dialect == Dialect::Postgres {
            let lock = format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", quote_ident(&self.table.name));
            tx.run(&Stmt::new(lock, vec![])).await?;
        }
        let mut table = catalog::table_in(tx, &self.table.name)
            .await?
            .ok_or_else(|| DbError::SchemaChanged(format!("'{}' was dropped", self.table.name)))?;
        let missing = self.missing_fields(&table)?;
        for (name, ty) in &missing {
            let sql = format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                quote_ident(&table.name),
                quote_ident(name),
                dialect.type_name(*ty)
            );
            tx.run(&Stmt::new(sql, vec![])).await.map_err(|err| duplicate_column(err, name))?;
            let mut column = Column::new(name, *ty);
            column.declared = dialect.type_name(*ty).to_owned();
            table.columns.push(column);
        }
        if let Some(fields) = search::fields_to_reindex(&table, &[]) {
            for stmt in search::rebuild_stmts(dialect, &table.name, &fields) {
                tx.run(&stmt).await?;
            }
            if let Some(meta) = table.collection.as_mut() {
                meta.search_index = Some(fields);
            }
        }
        Ok((Arc::new(table), true))
    }

    /// The fields the writes bring that `table` lacks, with the types their values give them.
    fn missing_fields(&self, table: &Table) -> Result<Vec<(String, ColumnType)>, ApiError> {
        let mut missing = Vec::new();
        for (i, mutation) in self.mutations.iter().enumerate() {
            if let Some(fields) = mutation.fields() {
                missing_columns(table, fields, self.options.auto_create, &mut missing).map_err(|e| self.at(i, e))?;
            }
        }
        Ok(missing)
    }

    /// Step 4: each write's fields, checked against the table's rules (before the
    /// transaction: `field_checks`) and typed for their columns.
    fn validate(&self, table: &Table) -> Result<Vec<Vec<(String, Value)>>, ApiError> {
        let typed = |mutation: &Mutation, checked: &Result<(), ApiError>| -> Result<Vec<(String, Value)>, ApiError> {
            checked.clone()?;
            match mutation {
                Mutation::Create { fields, .. } => rows::typed_row(table, &self.caller, fields, true),
                Mutation::Update { target, fields, replace } => {
                    let values = rows::typed_row(table, &self.caller, fields, false)?;
                    let values = match (replace, target) {
                        (true, Target::Id(id)) => rows::replacement(table, id, values)?,
                        (true, Target::Filter(_)) => return Err(ApiError::bad_request("PUT needs a row id")),
                        (false, _) => values,
                    };
                    if values.is_empty() && table.collection.is_none() {
                        return Err(ApiError::bad_request("the body names no column to change"));
                    }
                    Ok(values)
                }
                _ => Ok(Vec::new()),
            }
        };
        let checked = self.mutations.iter().zip(&self.field_checks);
        checked.enumerate().map(|(i, (m, c))| typed(m, c).map_err(|e| self.at(i, e))).collect()
    }

    /// Step 5 (and 6): one mutation's statements, the rows it leaves and its changes.
    async fn write<T: Tx>(
        &self,
        tx: &mut T,
        table: &Table,
        mutation: &Mutation,
        values: Vec<(String, Value)>,
        old: Vec<RecordData>,
    ) -> Result<(Records, Vec<Change>), ApiError> {
        let dialect = tx.dialect();
        let columns = output_columns(table, None, self.options.deleted)?;
        // A merge that updates a row it meets only when the caller owns it: it answers no row
        // exactly when it met one it may not change (read in step 2, or committed since).
        let owned_merge = match mutation {
            Mutation::Create { upsert: Some(upsert), .. }
                if matches!(self.scopes.update, access::Scope::OwnedBy(_)) =>
            {
                rows::merge_updates(table, upsert)?
            }
            _ => false,
        };
        let references = foreign_keys_set(table, &values);
        let relation_fields = table.collection.as_ref().map_or(&[][..], |meta| &meta.relations[..]);
        let related_ids = referenced_ids(relation_fields, &values);
        let stmt = match mutation {
            Mutation::Create { upsert, .. } => {
                let upsert = upsert.as_ref().map(|u| (u, &self.scopes.update));
                rows::insert(dialect, table, &self.caller, values, upsert, &columns)?
            }
            Mutation::Update { target, .. } => {
                let stmt =
                    rows::update(dialect, table, values, target, &self.scopes.update, self.options.deleted, &columns)?;
                if matches!(target, Target::Id(_)) { stmt.must_change() } else { stmt }
            }
            Mutation::Restore { id } => {
                let restored = output_columns(table, None, Deleted::Hidden)?;
                let rows = tx.run(&rows::restore(dialect, table, id, &self.scopes.update, &restored)).await?;
                // The records it names may have gone while it was deleted.
                if let Some(row) = rows.rows.first() {
                    let values: Vec<(String, Value)> =
                        restored.iter().map(|c| c.name.clone()).zip(row.iter().cloned()).collect();
                    self.check_related_ids(tx, &referenced_ids(relation_fields, &values)).await?;
                }
                return Ok(self.changed(table, &restored, rows, old));
            }
            Mutation::Delete { target } => return self.delete(tx, table, target, old).await,
        };
        let rows = tx.run(&stmt).await.map_err(|err| name_foreign_key(err, &references))?;
        if !rows.rows.is_empty() {
            self.check_related_ids(tx, &related_ids).await?;
        }
        // A collection's key is generated; a plain table's may be left null by SQLite.
        if matches!(mutation, Mutation::Create { .. }) && dialect == Dialect::Sqlite && table.collection.is_none() {
            refuse_null_keys(table, &columns, &rows)?;
        }
        // Refused, not passed over: the request is all or nothing.
        if owned_merge && rows.rows.is_empty() {
            return Err(ApiError::Forbidden(
                "a record with these values exists and only its owner may change it".into(),
            ));
        }
        Ok(self.changed(table, &columns, rows, old))
    }

    /// The rows a create or update returned, and their changes: an update (with the row it
    /// replaced) where a row was there before, a create otherwise.
    fn changed(&self, table: &Table, columns: &[&Column], rows: Rows, old: Vec<RecordData>) -> (Records, Vec<Change>) {
        let shape = shape(columns);
        let key = key(table).ok().map(|k| k.name.clone());
        // The rows before, by key: a filtered update may change many thousands of rows.
        let mut old_by_key: HashMap<Option<String>, RecordData> = HashMap::with_capacity(old.len());
        for record in old {
            let id = key.as_deref().and_then(|k| record.get(k)).and_then(key_text);
            old_by_key.entry(id).or_insert(record);
        }
        let changes = rows
            .rows
            .iter()
            .map(|values| {
                let record = RecordData { columns: shape.clone(), values: values.clone() };
                let id = key.as_deref().and_then(|k| record.get(k)).and_then(key_text);
                let before = old_by_key.get(&id).cloned();
                let op = if before.is_some() { ChangeOp::Update } else { ChangeOp::Create };
                self.change(&table.name, op, id, Some(record), before)
            })
            .collect();
        (Records::new(columns, rows), changes)
    }

    /// Deletes the rows `target` picked (read in step 2): one by one by key, each with its
    /// relations' `on_delete` effects; a keyless table's rows by the filters at once.
    async fn delete<T: Tx>(
        &self,
        tx: &mut T,
        table: &Table,
        target: &Target,
        old: Vec<RecordData>,
    ) -> Result<(Records, Vec<Change>), ApiError> {
        let dialect = tx.dialect();
        let old_columns = self.old_columns()?;
        let Ok(key) = key(table) else {
            let stmt = rows::delete_all(dialect, table, target, &self.scopes.delete, &old_columns)?;
            let rows = tx.run(&stmt).await?;
            let changes = rows
                .rows
                .iter()
                .map(|values| {
                    let record = RecordData { columns: shape(&old_columns), values: values.clone() };
                    self.change(&table.name, ChangeOp::Delete, None, Some(record.clone()), Some(record))
                })
                .collect();
            return Ok((Records::new(&old_columns, rows), changes));
        };
        let mut changes = Vec::with_capacity(old.len());
        for before in &old {
            let key_value = before.get(&key.name).cloned().unwrap_or(Value::Null);
            let stmt =
                rows::delete(dialect, table, &key_value, &self.scopes.delete, self.options.deleted, &old_columns)?;
            let after = tx.run(&stmt).await?.rows.into_iter().next();
            let record = after.map(|values| RecordData { columns: shape(&old_columns), values });
            let id = key_text(&key_value);
            changes.push(self.change(
                &table.name,
                ChangeOp::Delete,
                id.clone(),
                record.or(Some(before.clone())),
                Some(before.clone()),
            ));
            if let (Some(id), Some(_)) = (id, &table.collection) {
                changes.extend(self.effects(tx, &id).await?);
            }
        }
        let rows = Rows { rows: old.into_iter().map(|r| r.values).collect(), ..Rows::default() };
        Ok((Records::new(&old_columns, rows), changes))
    }

    /// The records a write's relation fields name must be live records of their targets that
    /// the caller may read (checked after the write, so that a record may name itself, or one
    /// an earlier mutation created). A record the caller may not read is answered as one that
    /// is not there: the refusal never tells whether it exists.
    async fn check_related_ids<T: Tx>(
        &self,
        tx: &mut T,
        related_ids: &[(&RelationField, Vec<String>)],
    ) -> Result<(), ApiError> {
        for (relation, ids) in related_ids {
            let scope = self.reference_scopes.iter().find(|(target, _)| target.name == relation.target);
            let Some((target, Some(scope))) = scope else {
                return Err(dangling(relation, &ids[0]));
            };
            let found = tx.run(&live_records(tx.dialect(), target, ids, scope)).await?.rows;
            let found: HashSet<&str> = found.iter().filter_map(|row| row.first().and_then(Value::as_text)).collect();
            if let Some(missing) = ids.iter().find(|id| !found.contains(id.as_str())) {
                return Err(dangling(relation, missing));
            }
        }
        Ok(())
    }

    fn change(
        &self,
        table: &str,
        op: ChangeOp,
        id: Option<String>,
        record: Option<RecordData>,
        old: Option<RecordData>,
    ) -> Change {
        Change { collection: table.to_owned(), op, id, record, old_record: old, actor: Actor::from(&self.caller) }
    }

    /// Step 6: the `on_delete` effects of deleting record `id`; each record they write is a
    /// change. A record a `cascade` deletes has its own relations' effects in turn: a
    /// `restrict` on it refuses the whole delete, and its own `cascade` and `set_null` apply,
    /// down to `MAX_CASCADE_DEPTH` levels.
    async fn effects<T: Tx>(&self, tx: &mut T, id: &str) -> Result<Vec<Change>, ApiError> {
        let hard = self.options.deleted == Deleted::Shown;
        let columns_of = |collection: &str| -> Vec<String> {
            self.related
                .iter()
                .find(|t| t.name == collection)
                .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default()
        };
        let mut changes = Vec::new();
        if hard {
            drop_files(tx, &self.table.name, id).await?;
        }
        // The deleted records whose effects are still to apply: (collection, id, depth).
        let mut deleted = vec![(self.table.name.clone(), id.to_owned(), 0)];
        while let Some((collection, id, depth)) = deleted.pop() {
            for effect in on_delete_plan(tx.dialect(), &self.relations, &collection, &id, hard, Some(&columns_of)) {
                match effect {
                    Effect::Refuse { probe, relation } => {
                        if !tx.run(&probe).await?.rows.is_empty() {
                            return Err(restricted(&relation));
                        }
                    }
                    Effect::Write { stmt, relation, deletes } => {
                        let rows = tx.run(&stmt).await?;
                        let Some(related) = self.related.iter().find(|t| t.name == relation.collection) else {
                            continue;
                        };
                        if deletes && !rows.rows.is_empty() && depth + 1 > MAX_CASCADE_DEPTH {
                            return Err(cascade_too_deep());
                        }
                        let shape = shape(&related.columns.iter().collect::<Vec<_>>());
                        let op = if deletes { ChangeOp::Delete } else { ChangeOp::Update };
                        for values in rows.rows {
                            let record = RecordData { columns: shape.clone(), values };
                            let id = record.get("_id").and_then(key_text);
                            if let (true, Some(id)) = (deletes, &id) {
                                if hard {
                                    drop_files(tx, &relation.collection, id).await?;
                                }
                                deleted.push((relation.collection.clone(), id.clone(), depth + 1));
                            }
                            changes.push(self.change(&relation.collection, op, id, Some(record), None));
                        }
                    }
                }
            }
        }
        Ok(changes)
    }
}

/// 400: a chain of `cascade` relations deeper than `MAX_CASCADE_DEPTH` (nothing is deleted).
fn cascade_too_deep() -> ApiError {
    ApiError::bad_input(
        crate::error::codes::LIMIT,
        format!(
            "the delete would cascade through more than {MAX_CASCADE_DEPTH} levels of relations \
             (MAX_CASCADE_DEPTH); delete the deepest records first"
        ),
    )
}

/// A record deleted for good takes its files along: their rows go, and their blobs go to the
/// trash that the file store's sweeper empties after the commit.
async fn drop_files<T: Tx>(tx: &mut T, collection: &str, id: &str) -> Result<(), ApiError> {
    let dialect = tx.dialect();
    let params = vec![Value::from(collection), Value::from(id)];
    let dropped =
        Stmt::fixed(dialect, "DELETE FROM _fb_files WHERE collection = ? AND record_id = ? RETURNING blob", params);
    for blob in tx.run(&dropped).await?.rows {
        let trash = "INSERT INTO _fb_blob_trash (blob, not_before) VALUES (?, 0) ON CONFLICT (blob) DO NOTHING";
        tx.run(&Stmt::fixed(dialect, trash, blob)).await?;
    }
    Ok(())
}

/// The names and types of `columns`, shared by every record of that shape.
fn shape(columns: &[&Column]) -> Arc<[(String, ColumnType)]> {
    columns.iter().map(|c| (c.name.clone(), c.ty)).collect()
}

/// A key as the change feed names it.
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Json(v) => Some(v.to_string()),
        Value::Bytes(b) => Some(crate::data::text_formats::hex_form(b)),
    }
}

/// The single-column foreign keys of `table` that a write gives a value (not null).
fn foreign_keys_set<'t>(table: &'t Table, values: &[(String, Value)]) -> Vec<&'t catalog::ForeignKey> {
    table
        .foreign_keys
        .iter()
        .filter(|key| values.iter().any(|(column, value)| column == &key.column && !matches!(value, Value::Null)))
        .collect()
}

/// SQLite reports a foreign key the write broke without naming it ("FOREIGN KEY constraint
/// failed"); the keys the write set name it, as PostgreSQL's message does, when there is one.
fn name_foreign_key(err: DbError, references: &[&catalog::ForeignKey]) -> DbError {
    match (err, references) {
        (DbError::ForeignKeyViolation(message), [key]) if message == "FOREIGN KEY constraint failed" => {
            DbError::ForeignKeyViolation(format!("{} must name an existing row of {}", key.column, key.target))
        }
        (DbError::ForeignKeyViolation(message), [_, _, ..]) if message == "FOREIGN KEY constraint failed" => {
            let columns: Vec<&str> = references.iter().map(|key| key.column.as_str()).collect();
            DbError::ForeignKeyViolation(format!("one of {} names no existing row", columns.join(", ")))
        }
        (err, _) => err,
    }
}

/// An `ADD COLUMN` that failed because the column exists: another request added it since the
/// catalog was read.
fn duplicate_column(err: DbError, name: &str) -> ApiError {
    let text = err.to_string();
    if text.contains("duplicate column")
        || text.contains(&format!("column \"{name}\"")) && text.contains("already exists")
    {
        return ApiError::Unavailable(DUPLICATE_COLUMN.into());
    }
    err.into()
}
