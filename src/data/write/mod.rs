//! The write pipeline: every write of records, whichever surface asks (the collections
//! surface's create, update, delete, restore, bulk and batch; the admin's record endpoints;
//! the tables surface's insert, upsert, update, replace and delete, by id or by filter), on a
//! collection or a table made with plain SQL, becomes a list of [`Mutation`]s that one
//! executor runs in one transaction, in a fixed order:
//!
//! 1. access: the collection's rule for each kind of mutation, and the verdict of its field
//!    rules (before the transaction, see [`field_checks`]);
//! 2. existence: each record to update, delete, restore (or merge with) is read, within the
//!    caller's scope (the record read is the change's `old_record`); before it, the plan's
//!    tables must still be at the schema versions the plan was made on, or everything is
//!    planned again (PostgreSQL checks this in the closing statement of step 7 instead);
//! 3. schema: fields the writes bring are added as columns, inside the transaction;
//! 4. validation: the field rules' verdict, and types;
//! 5. statements: the inserts, updates and deletes; the ids a create or update writes to
//!    relation fields must then name live records of the relations' targets;
//! 6. relation effects: `on_delete` of the relations pointing at deleted records;
//! 7. commit, then one change event per record written on the [feed](super::feed).
//!
//! A refusal at any step rolls everything back: no record, no related record and no column
//! changes. A write to a collection that does not exist yet (`auto_create_collections`)
//! creates it in the same transaction ([`Store::apply_creating`]), so a refused write leaves
//! no collection behind either.

mod executor;
mod rows;

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::access::{self, Caller, Scope};
use super::catalog::Table;
use super::query::Query;
use super::records::{Deleted, Records, rules};
use super::tables::Resolution;
use super::{Store, relations};
use crate::error::ApiError;

/// How often a request's writes are planned again when the schema moved under their plan
/// before they are refused (409, try again).
const MAX_REPLANS: usize = 3;

/// The records an update or delete changes.
#[derive(Debug, Clone)]
pub enum Target {
    /// The record (row) with this key.
    Id(String),
    /// Every record the filters match (the tables surface's `PATCH`/`DELETE` with filters).
    Filter(Query),
}

/// How an insert meets a row that holds the same unique values.
#[derive(Debug, Clone)]
pub struct Upsert {
    /// The unique columns the rows are matched on.
    pub on_conflict: Vec<String>,
    pub resolution: Resolution,
}

/// One write.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// A new record; with `upsert`, one holding the same unique values is merged or kept.
    Create {
        fields: Map<String, Json>,
        upsert: Option<Upsert>,
    },
    /// Changes the given fields; `replace` (PUT) makes every field not given null.
    Update {
        target: Target,
        fields: Map<String, Json>,
        replace: bool,
    },
    Delete {
        target: Target,
    },
    /// Undoes a soft delete (needs the update rule).
    Restore {
        id: String,
    },
}

impl Mutation {
    pub fn create(fields: Map<String, Json>) -> Mutation {
        Mutation::Create { fields, upsert: None }
    }

    pub fn update(id: &str, fields: Map<String, Json>) -> Mutation {
        Mutation::Update { target: Target::Id(id.to_owned()), fields, replace: false }
    }

    pub fn delete(id: &str) -> Mutation {
        Mutation::Delete { target: Target::Id(id.to_owned()) }
    }

    fn fields(&self) -> Option<&Map<String, Json>> {
        match self {
            Mutation::Create { fields, .. } | Mutation::Update { fields, .. } => Some(fields),
            _ => None,
        }
    }
}

/// How the mutations of one request are run.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Fields the table does not have yet are added (`auto_create_collections`).
    pub auto_create: bool,
    /// `Shown`: the admin's record endpoints, which update soft-deleted records too and delete
    /// for good.
    pub deleted: Deleted,
    /// A bulk or batch: errors name the 0-based index of the mutation at fault.
    pub indexed: bool,
    /// How many rows a filter may match, else nothing is written.
    pub affected: Affected,
}

/// How many rows a write by filter may change (the tables surface's guards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Affected {
    #[default]
    Any,
    /// Exactly one, else 406 (`Accept: application/vnd.pgrst.object+json`).
    ExactlyOne,
    /// At most this many, else 400 (`Prefer: handling=strict, max-affected=N`).
    AtMost(u64),
}

impl Affected {
    /// Why a filter that matched `rows` rows may not write them, if it may not.
    fn refusal(self, rows: usize) -> Option<ApiError> {
        match self {
            Affected::ExactlyOne if rows != 1 => Some(crate::data::tables::single_refused(rows)),
            Affected::AtMost(most) if rows as u64 > most => Some(crate::data::tables::too_many_affected(rows, most)),
            _ => None,
        }
    }
}

impl WriteOptions {
    /// One write of the collections surface.
    pub fn collection(auto_create: bool) -> WriteOptions {
        WriteOptions { auto_create, deleted: Deleted::Hidden, indexed: false, affected: Affected::Any }
    }
}

/// What one mutation wrote: the rows as they now are (every column), or for a delete the
/// rows as they were.
pub struct Written {
    pub records: Records,
}

/// The scopes the caller writes in, from the table's rules.
#[derive(Debug, Clone)]
pub(in crate::data) struct Scopes {
    update: Scope,
    delete: Scope,
}

impl Store {
    /// Runs `mutations` on `table` for `caller`, all or nothing, and publishes one change
    /// event per record written.
    pub async fn apply(
        &self,
        table: Arc<Table>,
        caller: &Caller,
        mutations: Vec<Mutation>,
        options: WriteOptions,
    ) -> Result<Vec<Written>, ApiError> {
        let mut plan = self.plan(table, caller, mutations, options, false).await?;
        let mut replans = 0;
        let outcome = loop {
            match self.db.transaction(plan.clone()).await {
                // The schema changed since the plan was made (another request added a field
                // this one adds, or changed the rules, validation or relations): the tables
                // are read again and the writes planned again, access checks included.
                Err(err) if executor::must_replan(&err) && replans < MAX_REPLANS => {
                    replans += 1;
                    let table = self.refreshed(&plan.table.name).await?;
                    plan = self.plan(table, caller, plan.mutations.clone(), options, true).await?;
                }
                other => {
                    // Writes that may take a key others refer to away (a merge upsert too).
                    let removes = plan.mutations.iter().any(|m| {
                        matches!(
                            m,
                            Mutation::Delete { .. }
                                | Mutation::Update { .. }
                                | Mutation::Create { upsert: Some(_), .. }
                        )
                    });
                    let result = self.checked(&plan.table.name, other).await;
                    break result
                        .map_err(|err| if removes { self.name_referencing_keys(&plan.table, err) } else { err })?;
                }
            }
        };
        self.committed(&plan.table.name, outcome).await
    }

    /// Step 1, and what the transaction needs besides: the caller's scopes, and for deletes
    /// the relations and the collections they reach (read afresh when `fresh`, after the
    /// schema moved under a plan).
    async fn plan(
        &self,
        table: Arc<Table>,
        caller: &Caller,
        mutations: Vec<Mutation>,
        options: WriteOptions,
        fresh: bool,
    ) -> Result<Arc<executor::Plan>, ApiError> {
        let scopes = check_rules(&table, caller, &mutations, options)?;
        let (mutations, field_checks) = checked_fields(&table, mutations).await?;
        let deletes = table.collection.is_some() && mutations.iter().any(|m| matches!(m, Mutation::Delete { .. }));
        let relations = if deletes { self.list_relations().await? } else { Vec::new() };
        // The collections whose records point at the table, and, through `cascade`
        // relations, at the records a delete takes along.
        let mut related: Vec<Arc<Table>> = Vec::new();
        let mut followed = vec![table.name.clone()];
        let mut targets = vec![table.name.clone()];
        while let Some(target) = targets.pop() {
            for relation in relations.iter().filter(|r| r.target == target) {
                if !related.iter().any(|t| t.name == relation.collection) {
                    let found = match fresh {
                        true => self.catalog.refresh(&relation.collection).await?,
                        false => self.catalog.lookup(&relation.collection).await?,
                    };
                    related.extend(found);
                }
                if relation.on_delete == crate::data::relations::OnDelete::Cascade
                    && !followed.contains(&relation.collection)
                {
                    followed.push(relation.collection.clone());
                    targets.push(relation.collection.clone());
                }
            }
        }
        let reference_scopes = self.reference_scopes(&table, caller).await?;
        Ok(Arc::new(executor::Plan {
            table,
            caller: caller.clone(),
            mutations,
            field_checks,
            options,
            scopes,
            relations,
            related,
            reference_scopes,
            instance: self.instance.clone(),
            channel: self.channel.clone(),
        }))
    }

    /// Each target of `table`'s relations, with the records of it that `caller` may name in a
    /// write: those it may read (`None`: none at all). A target that is gone is left out: its
    /// ids name nothing.
    async fn reference_scopes(
        &self,
        table: &Table,
        caller: &Caller,
    ) -> Result<Vec<(Arc<Table>, Option<Scope>)>, ApiError> {
        let Some(meta) = &table.collection else { return Ok(Vec::new()) };
        let mut scopes: Vec<(Arc<Table>, Option<Scope>)> = Vec::new();
        for relation in &meta.relations {
            if scopes.iter().any(|(target, _)| target.name == relation.target) {
                continue;
            }
            if let Some(target) = self.catalog.lookup(&relation.target).await? {
                let scope = access::scope(&target, &rules(&target).read, caller).ok();
                scopes.push((target, scope));
            }
        }
        Ok(scopes)
    }

    /// SQLite refuses a delete of a row that other rows still refer to without saying which
    /// ("FOREIGN KEY constraint failed"); the tables whose foreign keys point at the table
    /// name them, in the words of PostgreSQL's answer (see `postgres::foreign_key_message`).
    fn name_referencing_keys(&self, table: &Table, err: ApiError) -> ApiError {
        match err {
            ApiError::ConflictOf { message, code }
                if code == crate::error::codes::FOREIGN_KEY && message == "FOREIGN KEY constraint failed" =>
            {
                let referencing: Vec<String> = self
                    .catalog
                    .list()
                    .iter()
                    .filter(|t| t.foreign_keys.iter().any(|fk| fk.target == table.name))
                    .map(|t| t.name.clone())
                    .collect();
                let message = match referencing.as_slice() {
                    [] => message,
                    tables => format!("the row is still referenced from {}", tables.join(" or ")),
                };
                ApiError::ConflictOf { message, code }
            }
            ApiError::AtIndex { index, inner } => {
                ApiError::AtIndex { index, inner: Box::new(self.name_referencing_keys(table, *inner)) }
            }
            other => other,
        }
    }

    /// After a commit: the catalog reads the table again if the writes changed its shape (or
    /// made it), and the changes go out on the feed.
    async fn committed(&self, table: &str, outcome: executor::Outcome) -> Result<Vec<Written>, ApiError> {
        if outcome.schema_changed {
            self.refreshed(table).await?;
        }
        self.feed.publish(outcome.changes);
        Ok(outcome.written)
    }

    /// Runs `mutations` on the collection `name`, which the catalog does not know: it is
    /// created (default rules, fields from the writes) in the writes' own transaction. When
    /// another request created it meanwhile, the writes run on that collection as usual.
    pub(super) async fn apply_creating(
        &self,
        name: &str,
        caller: &Caller,
        mutations: Vec<Mutation>,
        options: WriteOptions,
    ) -> Result<Vec<Written>, ApiError> {
        // The rule the collection will have, checked before anything is made (the
        // transaction checks it again, on the collection as made).
        if let Some(i) = mutations.iter().position(|m| matches!(m, Mutation::Create { .. })) {
            access::check(&access::Rules::default().create, caller).map_err(|e| at_index(options, i, e))?;
        }
        let create = match self.collection_stmts(name, &access::Rules::default(), &[]).await {
            Err(ApiError::Conflict(_)) => {
                return self.apply(self.made_meanwhile(name).await?, caller, mutations, options).await;
            }
            other => other?,
        };
        let work = Arc::new(executor::NewCollection {
            name: name.to_owned(),
            create,
            caller: caller.clone(),
            mutations,
            options,
            instance: self.instance.clone(),
            channel: self.channel.clone(),
        });
        let outcome = match self.db.transaction(work.clone()).await {
            Err(err) if executor::is_created_meanwhile(&err) => {
                let table = self.made_meanwhile(name).await?;
                return self.apply(table, caller, work.mutations.clone(), options).await;
            }
            other => other?,
        };
        self.committed(name, outcome).await
    }

    /// The collection `name` that another request made while this one meant to: read afresh
    /// (this instance's catalog may not have heard of it). A table of that name made with
    /// plain SQL is no collection, and the collections surface does not write to it.
    async fn made_meanwhile(&self, name: &str) -> Result<Arc<Table>, ApiError> {
        match self.catalog.refresh(name).await? {
            Some(table) if table.collection.is_some() => Ok(table),
            _ => Err(ApiError::not_found(format!("collection '{name}' not found"))),
        }
    }
}

/// Whether `caller` may make every kind of mutation of `mutations` (what [`Store::apply`]
/// checks first), for work that must not start otherwise.
pub(super) fn check_access(table: &Table, caller: &Caller, mutations: &[Mutation]) -> Result<(), ApiError> {
    check_rules(table, caller, mutations, WriteOptions::collection(false)).map(|_| ())
}

/// Step 1: the rule of each kind of mutation the request holds, checked once.
fn check_rules(
    table: &Table,
    caller: &Caller,
    mutations: &[Mutation],
    options: WriteOptions,
) -> Result<Scopes, ApiError> {
    let rules = rules(table);
    let first = |pick: fn(&Mutation) -> bool| mutations.iter().position(pick);
    let at = |index: usize, err: ApiError| at_index(options, index, err);
    let mut scopes = Scopes { update: Scope::All, delete: Scope::All };
    if let Some(i) = first(|m| matches!(m, Mutation::Create { .. })) {
        access::scope(table, &rules.create, caller).map_err(|e| at(i, e))?;
    }
    let changes_rows = |m: &Mutation| match m {
        Mutation::Update { .. } | Mutation::Restore { .. } => true,
        Mutation::Create { upsert: Some(u), .. } => u.resolution == Resolution::Merge,
        _ => false,
    };
    if let Some(i) = first(changes_rows) {
        scopes.update = access::write_scope(table, &rules.update, caller).map_err(|e| at(i, e))?;
    }
    if let Some(i) = first(|m| matches!(m, Mutation::Delete { .. })) {
        scopes.delete = access::write_scope(table, &rules.delete, caller).map_err(|e| at(i, e))?;
    }
    Ok(scopes)
}

/// The text that field rules with a pattern check, past which they are checked on the
/// blocking pool rather than on the request's task.
const PATTERN_CHECKED_INLINE_BYTES: usize = 64 * 1024;

/// Step 4's field rules, checked before the transaction: the verdict on each mutation, which
/// the transaction reports at step 4 (the schema versions it checks keep the rules the same).
/// A pattern may take long over a large text (up to about 0.6 s a MB for a pathological one),
/// which must not hold SQLite's single writer or a PostgreSQL transaction; a large text is
/// checked on the blocking pool.
async fn checked_fields(
    table: &Arc<Table>,
    mutations: Vec<Mutation>,
) -> Result<(Vec<Mutation>, Vec<Result<(), ApiError>>), ApiError> {
    if pattern_checked_bytes(table, &mutations) <= PATTERN_CHECKED_INLINE_BYTES {
        let checks = field_checks(table, &mutations);
        return Ok((mutations, checks));
    }
    let table = table.clone();
    tokio::task::spawn_blocking(move || {
        let checks = field_checks(&table, &mutations);
        (mutations, checks)
    })
    .await
    .map_err(ApiError::internal)
}

/// The verdict of `table`'s field rules on each mutation: a collection's rules and relation
/// bounds for the fields given, and for a replacement (`PUT` by id) every required field.
pub(super) fn field_checks(table: &Table, mutations: &[Mutation]) -> Vec<Result<(), ApiError>> {
    use super::records::{check_collection_rules, check_replacement};
    let check = |mutation: &Mutation| match mutation {
        Mutation::Create { fields, .. } => check_collection_rules(table, fields, true),
        Mutation::Update { target, fields, replace } => {
            check_collection_rules(table, fields, false)?;
            match (replace, target) {
                (true, Target::Id(_)) => check_replacement(table, fields),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    };
    mutations.iter().map(check).collect()
}

/// The bytes of text that field rules with a pattern check in `mutations`.
fn pattern_checked_bytes(table: &Table, mutations: &[Mutation]) -> usize {
    let Some(meta) = &table.collection else { return 0 };
    let patterned: Vec<&str> =
        meta.field_rules.iter().filter(|(_, rule)| rule.pattern.is_some()).map(|(f, _)| f.as_str()).collect();
    if patterned.is_empty() {
        return 0;
    }
    let text = |fields: &Map<String, Json>| -> usize {
        patterned.iter().filter_map(|f| fields.get(*f)).filter_map(Json::as_str).map(str::len).sum()
    };
    mutations.iter().filter_map(Mutation::fields).map(text).sum()
}

/// The error of mutation `index`, named by its index in a bulk or batch.
fn at_index(options: WriteOptions, index: usize, err: ApiError) -> ApiError {
    match err {
        ApiError::AtIndex { .. } => err,
        other if options.indexed => ApiError::AtIndex { index, inner: Box::new(other) },
        other => other,
    }
}

pub(super) use relations::Relation;
