//! `GET` (and `HEAD`) `/tables/{table}` and `/tables/{table}/{id}`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::{json, only, prefer};
use crate::app::AppState;
use crate::data::access::Caller;
use crate::data::query::parse;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{Path, QueryPairs};

/// A list: filters, `select`, `order`, `limit`/`offset` or `Range`, `count` → an array (or
/// one object for `Accept: application/vnd.pgrst.object+json`) with `Content-Range`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(name): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let mut tq = parse::table_query(&pairs)?;
    only(&tq, &["order", "limit", "offset", "count", "filters"], "a read")?;
    let prefs = prefer::prefer(&headers)?;
    if tq.query.limit.is_none()
        && tq.query.offset.is_none()
        && let Some((offset, limit)) = prefer::range(&headers)?
    {
        tq.query.offset = Some(offset);
        tq.query.limit = limit;
    }
    let count = tq.count || prefs.count;
    let table = state.store().table(&name).await?;
    let page = state.store().table_select(&table, &caller, &tq.query, None, count).await?;
    let mut response = if prefer::wants_object(&headers) {
        json(StatusCode::OK, &page.rows.single()?)?
    } else {
        json(StatusCode::OK, &page.rows)?
    };
    let range = prefer::content_range(page.offset, page.rows.len(), page.total);
    let headers = response.headers_mut();
    headers.insert("content-range", HeaderValue::from_str(&range).map_err(ApiError::internal)?);
    if prefs.count {
        headers.insert("preference-applied", HeaderValue::from_static("count=exact"));
    }
    Ok(response)
}

/// One row by its key (`_id` for a collection, the primary key otherwise) → the object.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let tq = parse::table_query(&pairs)?;
    only(&tq, &[], "a read by id (only select does)")?;
    let table = state.store().table(&name).await?;
    let page = state.store().table_select(&table, &caller, &tq.query, Some(&id), false).await?;
    if page.rows.is_empty() {
        let shown: String = id.chars().take(64).collect();
        return Err(ApiError::not_found(format!("no row '{shown}' in '{}'", table.name)));
    }
    json(StatusCode::OK, &page.rows.single()?)
}
