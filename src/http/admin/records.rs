//! `/api/v1/admin/collections/:name/records`: every record, deleted ones included; delete is
//! for good.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::data::access::Caller;
use crate::data::query::parse;
use crate::data::records::Deleted;
use crate::error::ApiResult;
use crate::http::extract::{Admin, JsonBody, Path, QueryPairs};
use crate::http::records::single_record_params;

pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let mut query = parse::collection_query(&pairs)?;
    // Deleted records are shown unless the admin asks otherwise.
    if !pairs.iter().any(|(k, _)| k == "include_deleted") {
        query.include_deleted = true;
    }
    let page = state.store().list_records(&name, &Caller::Admin, &query).await?;
    Ok(Json(page).into_response())
}

pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let auto_create = state.settings().get_bool("auto_create_collections");
    let records = state.store().create_record(&name, &Caller::Admin, &body, auto_create).await?;
    Ok((StatusCode::CREATED, Json(records.first())).into_response())
}

pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let (fields, _expand) = single_record_params(&pairs)?;
    let records = state.store().get_record(&name, &id, &Caller::Admin, Deleted::Shown, fields.as_deref()).await?;
    Ok(Json(records.first()).into_response())
}

pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let auto_create = state.settings().get_bool("auto_create_collections");
    let records = state.store().update_record(&name, &id, &Caller::Admin, &body, Deleted::Shown, auto_create).await?;
    Ok(Json(records.first()).into_response())
}

pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    state.store().delete_record(&name, &id, &Caller::Admin, true).await?;
    Ok(Json(json!({ "deleted": true, "_id": id })).into_response())
}
