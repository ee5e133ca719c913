//! `POST`, `PATCH`, `DELETE` `/tables/{table}` (filters) and `PUT`, `PATCH`, `DELETE`
//! `/tables/{table}/{id}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json};

use super::prefer::{self, Format, Prefer, Return};
use super::{json, only, rows_answer_as};
use crate::app::AppState;
use crate::data::access::Caller;
use crate::data::catalog::Table;
use crate::data::query::parse;
use crate::data::tables::{TableRows, insert_mutations, single_refused};
use crate::data::write::{Affected, Mutation, Target};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{JsonOnlyBody, Path, QueryPairs};

/// One object or an array of objects (all inserted or none); upserts with
/// `Prefer: resolution=…` and `on_conflict=`; `columns=` limits the keys used.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(name): Path<String>,
    QueryPairs(pairs): QueryPairs,
    JsonOnlyBody(body): JsonOnlyBody<Json>,
) -> ApiResult<Response> {
    let tq = parse::table_query(&pairs)?;
    only(&tq, &["on_conflict", "columns", "count"], "an insert")?;
    let prefs = prefer::prefer(&headers)?;
    let single = !body.is_array();
    let objects: Vec<&Map<String, Json>> = match &body {
        Json::Object(object) => vec![object],
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.as_object().ok_or_else(|| ApiError::AtIndex {
                    index,
                    inner: Box::new(ApiError::bad_request("each item must be a JSON object")),
                })
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(ApiError::bad_request("the body must be a JSON object or an array of objects")),
    };
    let format = prefer::format(&headers)?;
    let wants_object = format == Format::Object;
    if wants_object && objects.len() != 1 {
        return Err(single_refused(objects.len()));
    }
    let (store, caller, tq, objects) = (state.store(), &caller, &tq, &objects);
    let insert = |table: Arc<Table>| async move {
        let mutations =
            insert_mutations(&table, objects, tq.columns.as_deref(), tq.on_conflict.as_deref(), prefs.resolution)?;
        if mutations.is_empty() {
            return Ok((table, TableRows::default()));
        }
        let rows = store.table_write(&table, caller, &tq.query, mutations, Affected::Any).await?;
        Ok((table, rows))
    };
    let (table, rows) = store.with_table(&name, insert).await?;
    let mut response = match prefs.ret {
        Some(Return::Minimal) => StatusCode::CREATED.into_response(),
        Some(Return::HeadersOnly) => {
            let mut response = StatusCode::CREATED.into_response();
            if let Some(key) = table.key_column()
                && rows.len() == 1
                && let Some(value) = rows.text_of(0, &key.name)
            {
                let location =
                    format!("/api/v1/tables/{}?{}=eq.{}", encode(&table.name), encode(&key.name), encode(&value));
                if let Ok(v) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, v);
                }
            }
            response
        }
        Some(Return::Representation) => representation(StatusCode::CREATED, format, &rows, false)?,
        _ => representation(StatusCode::CREATED, format, &rows, single && rows.len() == 1)?,
    };
    let counted = (tq.count || prefs.count).then_some(rows.len() as i64);
    let headers = response.headers_mut();
    // PostgREST's form for an insert: no range, and the count of rows written when asked.
    set_content_range(headers, format!("*/{}", counted.map_or_else(|| "*".to_owned(), |n| n.to_string())));
    if let Some(resolution) = prefs.resolution {
        let applied = match resolution {
            crate::data::tables::Resolution::Merge => "resolution=merge-duplicates",
            crate::data::tables::Resolution::Ignore => "resolution=ignore-duplicates",
        };
        headers.insert("preference-applied", HeaderValue::from_static(applied));
    }
    Ok(response)
}

/// `PATCH /tables/{table}?filters`: changes every matching row; refuses to run without a
/// filter.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(name): Path<String>,
    QueryPairs(pairs): QueryPairs,
    JsonOnlyBody(body): JsonOnlyBody<Json>,
) -> ApiResult<Response> {
    let tq = parse::table_query(&pairs)?;
    only(&tq, &["filters", "count"], "an update")?;
    require_filters(&tq, "PATCH")?;
    let object = body_object(&body)?;
    let prefs = prefer::prefer(&headers)?;
    let format = prefer::format(&headers)?;
    let (store, caller, query) = (state.store(), &caller, &tq.query);
    let update = |table: Arc<Table>| async move {
        let update = Mutation::Update { target: Target::Filter(query.clone()), fields: object.clone(), replace: false };
        store.table_write(&table, caller, query, vec![update], prefs.affected(format)).await
    };
    let rows = store.with_table(&name, update).await?;
    many_answer(prefs, format, tq.count || prefs.count, &rows)
}

/// `DELETE /tables/{table}?filters`: deletes every matching row; refuses to run without a
/// filter.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(name): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let tq = parse::table_query(&pairs)?;
    only(&tq, &["filters", "count"], "a delete")?;
    require_filters(&tq, "DELETE")?;
    let prefs = prefer::prefer(&headers)?;
    let format = prefer::format(&headers)?;
    let (store, caller, query) = (state.store(), &caller, &tq.query);
    let delete = |table: Arc<Table>| async move {
        let delete = Mutation::Delete { target: Target::Filter(query.clone()) };
        store.table_write(&table, caller, query, vec![delete], prefs.affected(format)).await
    };
    let rows = store.with_table(&name, delete).await?;
    many_answer(prefs, format, tq.count || prefs.count, &rows)
}

/// `PUT /tables/{table}/{id}`: replaces the row; columns not given become null.
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(row): Path<(String, String)>,
    QueryPairs(pairs): QueryPairs,
    JsonOnlyBody(body): JsonOnlyBody<Json>,
) -> ApiResult<Response> {
    by_id_update(state, ByIdWrite { caller, headers, row, pairs, body }, true).await
}

/// `PATCH /tables/{table}/{id}`: changes the given columns of the row.
pub async fn update_one(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(row): Path<(String, String)>,
    QueryPairs(pairs): QueryPairs,
    JsonOnlyBody(body): JsonOnlyBody<Json>,
) -> ApiResult<Response> {
    by_id_update(state, ByIdWrite { caller, headers, row, pairs, body }, false).await
}

/// A write of one row by id, as it arrived.
struct ByIdWrite {
    caller: Caller,
    headers: HeaderMap,
    /// The table and the row's id.
    row: (String, String),
    pairs: Vec<(String, String)>,
    body: Json,
}

async fn by_id_update(state: AppState, request: ByIdWrite, replace: bool) -> ApiResult<Response> {
    let ByIdWrite { caller, headers, row: (name, id), pairs, body } = request;
    let tq = parse::table_query(&pairs)?;
    only(&tq, &[], "a write by id (only select does)")?;
    let object = body_object(&body)?;
    let prefs = prefer::prefer(&headers)?;
    let format = prefer::format(&headers)?;
    let (store, caller, query, id) = (state.store(), &caller, &tq.query, &id);
    let update = |table: Arc<Table>| async move {
        let update = Mutation::Update { target: Target::Id(id.clone()), fields: object.clone(), replace };
        store.table_write(&table, caller, query, vec![update], Affected::Any).await
    };
    let rows = store.with_table(&name, update).await?;
    match prefs.ret {
        Some(Return::Minimal | Return::HeadersOnly) => Ok(StatusCode::NO_CONTENT.into_response()),
        _ => representation(StatusCode::OK, format, &rows, true),
    }
}

/// `DELETE /tables/{table}/{id}` → 204 (200 with the row for `return=representation`).
pub async fn delete_one(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let tq = parse::table_query(&pairs)?;
    only(&tq, &[], "a delete by id (only select does)")?;
    let prefs = prefer::prefer(&headers)?;
    let format = prefer::format(&headers)?;
    let (store, caller, query, id) = (state.store(), &caller, &tq.query, &id);
    let delete = |table: Arc<Table>| async move {
        let delete = Mutation::Delete { target: Target::Id(id.clone()) };
        store.table_write(&table, caller, query, vec![delete], Affected::Any).await
    };
    let rows = store.with_table(&name, delete).await?;
    match prefs.ret {
        Some(Return::Representation) => representation(StatusCode::OK, format, &rows, true),
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

fn require_filters(tq: &crate::data::query::TableQuery, method: &str) -> ApiResult<()> {
    if tq.query.filters.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{method} without an id needs at least one filter (column=operator.value); it would change every row"
        )));
    }
    Ok(())
}

fn body_object(body: &Json) -> ApiResult<&Map<String, Json>> {
    body.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))
}

/// The rows a write answers with, in the representation `Accept` asks for (see
/// [`prefer::format`]): CSV, one object, or JSON: an array, or the row alone when the request
/// wrote `one` row by its nature (a write by id, an insert of one object).
fn representation(status: StatusCode, format: Format, rows: &TableRows, one: bool) -> ApiResult<Response> {
    match format {
        Format::Json if one => json(status, &rows.single()?),
        Format::Json => json(status, rows),
        other => rows_answer_as(status, other, rows),
    }
}

/// The answer of a PATCH or DELETE with filters: 204, or the rows for
/// `return=representation` (one object for `Accept: application/vnd.pgrst.object+json`);
/// `Content-Range` spans the rows changed, with their count when `counted`.
fn many_answer(prefs: Prefer, format: Format, counted: bool, rows: &TableRows) -> ApiResult<Response> {
    let mut response = match prefs.ret {
        Some(Return::Representation) => representation(StatusCode::OK, format, rows, false)?,
        _ => StatusCode::NO_CONTENT.into_response(),
    };
    let total = counted.then_some(rows.len() as i64);
    set_content_range(response.headers_mut(), prefer::content_range(0, rows.len(), total));
    if let Some(most) = prefs.max_affected
        && let Ok(applied) = HeaderValue::from_str(&format!("handling=strict, max-affected={most}"))
    {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

fn set_content_range(headers: &mut HeaderMap, range: String) {
    if let Ok(value) = HeaderValue::from_str(&range) {
        headers.insert(header::CONTENT_RANGE, value);
    }
}

/// Percent-encodes a value for a URL query.
fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
