//! `/api/v1/admin/relations`: list, create, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::data::relations::NewRelation;
use crate::error::ApiResult;
use crate::http::extract::{Admin, JsonBody, Path};

pub async fn list(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let relations = state.store().list_relations().await?;
    Ok(Json(json!({ "relations": relations })).into_response())
}

/// `{collection, field, target, many?, on_delete?: "restrict" | "cascade" | "set_null"}`.
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let new: NewRelation = crate::http::extract::from_object(body, "relation")?;
    let relation = state.store().create_relation(new).await?;
    Ok((StatusCode::CREATED, Json(relation)).into_response())
}

pub async fn delete(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    state.store().delete_relation(&id).await?;
    Ok(Json(json!({ "deleted": true, "id": id })).into_response())
}
