//! The collections surface: `/api/v1/:collection` and `/api/v1/:collection/:id`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::conditional;
use super::extract::{JsonBody, Path, QueryPairs};
use crate::app::AppState;
use crate::data::access::Caller;
use crate::data::aggregate;
use crate::data::names::RESERVED_COLLECTIONS;
use crate::data::query::parse;
use crate::data::records::Deleted;
use crate::error::{ApiError, ApiResult};

/// A reserved first segment (`/api/v1/auth/...`) that reached the collection routes is a
/// route that does not exist, not a collection.
fn collection_name(name: &str) -> ApiResult<&str> {
    match reserved_segment(name) {
        Some(err) => Err(err),
        None => Ok(name),
    }
}

/// The 404 for a reserved first segment, or `None` for a name a collection may have.
pub(super) fn reserved_segment(name: &str) -> Option<ApiError> {
    RESERVED_COLLECTIONS.contains(&name).then(|| {
        ApiError::not_found(format!(
            "no such route under /api/v1/{name}/ ('{name}' is reserved: it names no collection)"
        ))
    })
}

/// The list parameters of a read, refusing `include_deleted` to anyone but the admin.
fn read_query(caller: &Caller, pairs: &[(String, String)]) -> ApiResult<crate::data::query::Query> {
    let query = parse::collection_query(pairs)?;
    if query.include_deleted && !caller.is_admin() {
        let why = "include_deleted needs the admin secret".to_owned();
        return Err(if matches!(caller, Caller::Anonymous) {
            ApiError::Unauthorized(why)
        } else {
            ApiError::Forbidden(why)
        });
    }
    Ok(query)
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(collection): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let mut query = read_query(&caller, &pairs)?;
    let name = collection_name(&collection)?;
    let unshown = widen_for_expand(&mut query.fields, &query.expand);
    let page = state.store().list_records(name, &caller, &query).await?;
    if query.expand.is_empty() {
        return conditional::json(&headers, &page);
    }
    let items = with_expansions(&state, &caller, name, &page.records, &query.expand, &unshown).await?;
    let mut answer = serde_json::to_value(&page).map_err(ApiError::internal)?;
    answer["items"] = serde_json::Value::Array(items);
    conditional::json(&headers, &answer)
}

/// `fields` widened by the relation fields `expand` reads, which a projection may leave out;
/// the fields added, which the answer then does not show.
fn widen_for_expand(fields: &mut Option<Vec<String>>, expand: &[String]) -> Vec<String> {
    let Some(fields) = fields else { return Vec::new() };
    let added: Vec<String> = expand.iter().filter(|field| !fields.contains(field)).cloned().collect();
    fields.extend(added.iter().cloned());
    added
}

/// The records as JSON, each with `"expand": {field: related}` for the relations asked for,
/// without the `unshown` fields (read for the expansion only).
async fn with_expansions(
    state: &AppState,
    caller: &Caller,
    collection: &str,
    records: &crate::data::records::Records,
    expand: &[String],
    unshown: &[String],
) -> ApiResult<Vec<serde_json::Value>> {
    let table = state.store().collection(collection).await?;
    let expanded = state.store().expand(&table, caller, records, expand).await?;
    records
        .iter()
        .zip(expanded)
        .map(|(record, expansion)| {
            let mut json = serde_json::to_value(record).map_err(ApiError::internal)?;
            if let Some(object) = json.as_object_mut() {
                for field in unshown {
                    object.shift_remove(field);
                }
            }
            json["expand"] = serde_json::Value::Object(expansion);
            Ok(json)
        })
        .collect()
}

pub async fn count(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(collection): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let query = read_query(&caller, &pairs)?;
    only_filters(&query, "count takes include_deleted, search and filters")?;
    let count = state.store().count_records(collection_name(&collection)?, &caller, &query).await?;
    conditional::json(&headers, &json!({ "count": count }))
}

/// Refuses the list parameters that shape a page (paging, sorting, projection, expansion)
/// where no page is answered: a parameter that would be ignored is a 400 saying what applies.
fn only_filters(query: &crate::data::query::Query, applies: &str) -> ApiResult<()> {
    let shapes_a_page = query.limit.is_some()
        || query.page.is_some()
        || query.offset.is_some()
        || query.after.is_some()
        || query.fields.is_some()
        || !query.sort.is_empty()
        || !query.expand.is_empty();
    match shapes_a_page {
        true => Err(ApiError::bad_request(applies)),
        false => Ok(()),
    }
}

/// `GET /:collection/aggregate?op=count|sum|avg|min|max&field=…&group_by=…` plus filters →
/// `{"result": …}` or `{"groups": [{"key", "result"}]}`.
pub async fn aggregate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(collection): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    const OWN_PARAMS: [&str; 3] = ["op", "field", "group_by"];
    if let Some(repeated) = OWN_PARAMS.iter().find(|p| pairs.iter().filter(|(k, _)| k == *p).count() > 1) {
        return Err(ApiError::bad_field(repeated, format!("'{repeated}' is given more than once")));
    }
    let take = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let op = aggregate::Op::parse(take("op").ok_or_else(|| ApiError::bad_field("op", "'op' is required"))?)?;
    let (field, group_by) = (take("field"), take("group_by"));
    let rest: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| !OWN_PARAMS.contains(&k.as_str())).cloned().collect();
    let query = read_query(&caller, &rest)?;
    only_filters(&query, "aggregate takes op, field, group_by, include_deleted, search and filters")?;
    let answer = state.store().aggregate(collection_name(&collection)?, &caller, op, field, group_by, &query).await?;
    match answer {
        aggregate::Aggregate::Single(records) => {
            // The record is `{"result": …}` already: the answer is that object.
            let record = records.first().map(serde_json::to_value).transpose().map_err(ApiError::internal)?;
            conditional::json(&headers, &record.unwrap_or_else(|| json!({ "result": null })))
        }
        aggregate::Aggregate::Groups(records) => {
            let groups: Vec<_> = records.iter().collect();
            conditional::json(&headers, &json!({ "groups": groups }))
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<String>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let auto_create = state.settings().get_bool("auto_create_collections");
    let records = state.store().create_record(collection_name(&collection)?, &caller, &body, auto_create).await?;
    Ok((StatusCode::CREATED, Json(records.first())).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((collection, id)): Path<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let (mut fields, expand) = single_record_params(&pairs)?;
    let name = collection_name(&collection)?;
    let unshown = widen_for_expand(&mut fields, &expand);
    let records = state.store().get_record(name, &id, &caller, Deleted::Hidden, fields.as_deref()).await?;
    if expand.is_empty() {
        return conditional::json(&headers, &records.first());
    }
    let items = with_expansions(&state, &caller, name, &records, &expand, &unshown).await?;
    conditional::json(&headers, &items.into_iter().next())
}

/// The parameters a single-record read takes: `fields` and `expand`.
pub fn single_record_params(pairs: &[(String, String)]) -> ApiResult<(Option<Vec<String>>, Vec<String>)> {
    let (mut fields, mut expand) = (None, Vec::new());
    for (key, value) in pairs {
        match key.as_str() {
            "fields" => fields = Some(parse::field_list("fields", value)?),
            "expand" => expand = parse::field_list("expand", value)?,
            other => return Err(ApiError::bad_request(format!("unknown query parameter '{other}'"))),
        }
    }
    Ok((fields, expand))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let auto_create = state.settings().get_bool("auto_create_collections");
    let records = state
        .store()
        .update_record(collection_name(&collection)?, &id, &caller, &body, Deleted::Hidden, auto_create)
        .await?;
    Ok(Json(records.first()).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    state.store().delete_record(collection_name(&collection)?, &id, &caller, false).await?;
    Ok(Json(json!({ "deleted": true, "_id": id })).into_response())
}

pub async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let records = state.store().restore_record(collection_name(&collection)?, &id, &caller).await?;
    Ok(Json(records.first()).into_response())
}

/// `POST /:collection/bulk` with an array of up to 500 records: all are created or none.
pub async fn bulk(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<String>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let records = body.as_array().ok_or_else(|| ApiError::bad_request("the body must be an array of records"))?;
    let auto_create = state.settings().get_bool("auto_create_collections");
    let items = state.store().bulk_create(collection_name(&collection)?, &caller, records, auto_create).await?;
    Ok((StatusCode::CREATED, Json(json!({ "items": items, "count": items.len() }))).into_response())
}

/// `POST /:collection/batch` with `{"operations": [{op, id?, data?}]}` (up to 100), in one
/// transaction.
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<String>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch {
        operations: Vec<crate::data::batch::Operation>,
    }
    let batch: Batch = crate::http::extract::from_object(body, "batch")?;
    let auto_create = state.settings().get_bool("auto_create_collections");
    let results = state.store().batch(collection_name(&collection)?, &caller, &batch.operations, auto_create).await?;
    Ok(Json(json!({ "results": results })).into_response())
}
