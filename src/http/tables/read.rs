//! `GET` (and `HEAD`) `/tables/{table}` and `/tables/{table}/{id}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{json, only, prefer, rows_answer};
use crate::app::AppState;
use crate::data::access::Caller;
use crate::data::catalog::Table;
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
    let format = prefer::format(&headers)?;
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
    let (store, caller, query) = (state.store(), &caller, &tq.query);
    let page = store
        .with_table(&name, |table| async move { store.table_select(&table, caller, query, None, count).await })
        .await?;
    let range = prefer::content_range(page.offset, page.rows.len(), page.total);
    let status = prefer::range_status(page.offset, page.rows.len(), page.total);
    let mut response = if status == StatusCode::RANGE_NOT_SATISFIABLE {
        let total = page.total.unwrap_or(0);
        ApiError::RangeNotSatisfiable(format!("the range starts at row {} but only {total} rows match", page.offset))
            .into_response()
    } else {
        rows_answer(format, &page.rows)?
    };
    if status == StatusCode::PARTIAL_CONTENT {
        *response.status_mut() = status;
    }
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
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let tq = parse::table_query(&pairs)?;
    only(&tq, &[], "a read by id (only select does)")?;
    let format = prefer::format(&headers)?;
    let (store, caller, query, id) = (state.store(), &caller, &tq.query, id.as_str());
    let read = |table: Arc<Table>| async move {
        let page = store.table_select(&table, caller, query, Some(id), false).await?;
        Ok((table, page))
    };
    let (table, page) = store.with_table(&name, read).await?;
    if page.rows.is_empty() {
        let shown: String = id.chars().take(64).collect();
        return Err(ApiError::not_found(format!("no row '{shown}' in '{}'", table.name)));
    }
    match format {
        // One row: an object, whether asked for as JSON or as one object.
        prefer::Format::Json => json(StatusCode::OK, &page.rows.single()?),
        other => rows_answer(other, &page.rows),
    }
}
