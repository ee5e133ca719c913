//! Bulk create and batches of creates, updates and deletes: each request runs in one
//! transaction, so all of it takes effect or none does. A failure names the 0-based index of
//! the record or operation at fault.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::Store;
use super::access::Caller;
use super::records::{Records, body_object};
use super::write::{Mutation, WriteOptions};
use crate::error::ApiError;

pub use crate::limits::{MAX_BATCH, MAX_BULK};

/// One operation of a batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub op: String,
    pub id: Option<String>,
    pub data: Option<Json>,
}

fn at(index: usize, err: ApiError) -> ApiError {
    match err {
        ApiError::AtIndex { .. } => err,
        other => ApiError::AtIndex { index, inner: Box::new(other) },
    }
}

impl Store {
    /// Creates every record of `bodies` or none.
    pub async fn bulk_create(
        &self,
        name: &str,
        caller: &Caller,
        bodies: &[Json],
        auto_create: bool,
    ) -> Result<Vec<Json>, ApiError> {
        if bodies.is_empty() || bodies.len() > MAX_BULK {
            return Err(ApiError::bad_request(format!("a bulk create takes 1 to {MAX_BULK} records (MAX_BULK)")));
        }
        let mutations = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| Ok(Mutation::create(body_object(body).map_err(|e| at(i, e))?.clone())))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let table = self.writable_collection(name, auto_create).await?;
        let options = WriteOptions { indexed: true, ..WriteOptions::collection(auto_create) };
        let written = self.apply_to(name, table, caller, mutations, options).await?;
        Ok(written.into_iter().map(|w| first_record(w.records)).collect())
    }

    /// Runs create, update and delete operations in one transaction. Access rules apply to
    /// each; an update or delete of a record that does not exist (or that the caller may not
    /// change) fails the batch.
    pub async fn batch(
        &self,
        name: &str,
        caller: &Caller,
        operations: &[Operation],
        auto_create: bool,
    ) -> Result<Vec<Json>, ApiError> {
        if operations.is_empty() || operations.len() > MAX_BATCH {
            return Err(ApiError::bad_request(format!("a batch takes 1 to {MAX_BATCH} operations (MAX_BATCH)")));
        }
        let mutations = operations
            .iter()
            .enumerate()
            .map(|(i, o)| o.mutation().map_err(|e| at(i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let creates = mutations.iter().any(|m| matches!(m, Mutation::Create { .. }));
        let table = if creates {
            self.writable_collection(name, auto_create).await?
        } else {
            Some(self.collection(name).await?)
        };
        let options = WriteOptions { indexed: true, ..WriteOptions::collection(auto_create) };
        let written = self.apply_to(name, table, caller, mutations, options).await?;
        Ok(written
            .into_iter()
            .zip(operations)
            .map(|(w, operation)| match operation.op.as_str() {
                "delete" => json!({ "_id": operation.id, "deleted": true }),
                _ => first_record(w.records),
            })
            .collect())
    }
}

impl Operation {
    /// The operation as a mutation of the write pipeline.
    fn mutation(&self) -> Result<Mutation, ApiError> {
        let id = || self.id.clone().ok_or_else(|| ApiError::bad_field("id", "'id' is required"));
        let fields = || -> Result<_, ApiError> {
            let data = self.data.as_ref().ok_or_else(|| ApiError::bad_field("data", "'data' is required"))?;
            Ok(body_object(data)?.clone())
        };
        Ok(match self.op.as_str() {
            "create" => Mutation::create(fields()?),
            "update" => Mutation::update(&id()?, fields()?),
            "delete" => Mutation::delete(&id()?),
            other => {
                return Err(ApiError::bad_field("op", format!("unknown op '{other}': use create, update or delete")));
            }
        })
    }
}

fn first_record(records: Records) -> Json {
    records.first().map(|r| serde_json::to_value(r).unwrap_or(Json::Null)).unwrap_or(Json::Null)
}
