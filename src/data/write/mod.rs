//! The write pipeline: every write of a collection's records (create, update, delete,
//! restore; one at a time, in bulk or in a batch; by a user or by the admin) becomes a list of
//! [`Mutation`]s that one executor runs in one transaction, in a fixed order:
//!
//! 1. access: the collection's rule for each kind of mutation (before the transaction);
//! 2. existence: each record to update, delete or restore is read, within the caller's scope
//!    (the record read is the change's `old_record`);
//! 3. schema: fields the writes bring are added as columns, inside the transaction;
//! 4. validation: field rules and types;
//! 5. statements: the inserts, updates and deletes;
//! 6. relation effects: `on_delete` of the relations pointing at deleted records;
//! 7. commit, then one change event per record written on the [feed](super::feed).
//!
//! A refusal at any step rolls everything back: no record, no related record and no column
//! changes.

mod executor;

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::access::{self, Caller, Scope};
use super::catalog::Table;
use super::records::{Deleted, Records, rules};
use super::{Store, relations};
use crate::error::ApiError;

/// One record write.
#[derive(Debug, Clone)]
pub enum Mutation {
    Create {
        fields: Map<String, Json>,
    },
    Update {
        id: String,
        fields: Map<String, Json>,
    },
    Delete {
        id: String,
    },
    /// Undoes a soft delete (needs the update rule).
    Restore {
        id: String,
    },
}

impl Mutation {
    fn id(&self) -> Option<&str> {
        match self {
            Mutation::Create { .. } => None,
            Mutation::Update { id, .. } | Mutation::Delete { id } | Mutation::Restore { id } => Some(id),
        }
    }

    fn fields(&self) -> Option<&Map<String, Json>> {
        match self {
            Mutation::Create { fields } | Mutation::Update { fields, .. } => Some(fields),
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
}

/// What one mutation wrote: the record as it now is (`None` for a delete).
pub struct Written {
    pub record: Option<Records>,
}

/// The scopes the caller writes in, from the collection's rules.
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
        let scopes = check_rules(&table, caller, &mutations, options)?;
        let deletes = mutations.iter().any(|m| matches!(m, Mutation::Delete { .. }));
        let relations = if deletes { self.list_relations().await? } else { Vec::new() };
        let mut related = Vec::new();
        for relation in relations.iter().filter(|r| r.target == table.name) {
            if let Some(t) = self.catalog.lookup(&relation.collection).await? {
                related.push(t);
            }
        }
        let plan = Arc::new(executor::Plan {
            table: table.clone(),
            caller: caller.clone(),
            mutations,
            options,
            scopes,
            relations,
            related,
        });
        let outcome = match self.db.transaction(plan.clone()).await {
            // Another request added a field this one adds: plan again with the new columns.
            Err(err) if executor::is_duplicate_column(&err) => {
                let table = self.refreshed(&table.name).await?;
                self.db.transaction(Arc::new(executor::Plan { table, ..(*plan).clone() })).await?
            }
            other => other?,
        };
        if outcome.schema_changed {
            self.refreshed(&table.name).await?;
        }
        self.feed.publish(outcome.changes);
        Ok(outcome.written)
    }
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
    let at = |index: usize, err: ApiError| {
        if options.indexed { ApiError::AtIndex { index, inner: Box::new(err) } } else { err }
    };
    let mut scopes = Scopes { update: Scope::All, delete: Scope::All };
    if let Some(i) = first(|m| matches!(m, Mutation::Create { .. })) {
        access::check(&rules.create, caller).map_err(|e| at(i, e))?;
    }
    if let Some(i) = first(|m| matches!(m, Mutation::Update { .. } | Mutation::Restore { .. })) {
        scopes.update = access::check(&rules.update, caller).map_err(|e| at(i, e))?;
    }
    if let Some(i) = first(|m| matches!(m, Mutation::Delete { .. })) {
        scopes.delete = access::check(&rules.delete, caller).map_err(|e| at(i, e))?;
    }
    Ok(scopes)
}

pub(super) use relations::Relation;
