//! `/api/v1/admin/collections/:name/indexes`: list, create (one column or several, unique or
//! not), drop.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{Admin, JsonBody, Path};

pub async fn list(_: Admin, State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    let indexes = state.store().list_indexes(&name).await?;
    Ok(Json(json!({ "indexes": indexes })).into_response())
}

/// `{"column": "a"}` or `{"columns": ["a", "b"]}`, with `"unique": true` optionally.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIndex {
    column: Option<String>,
    columns: Option<Vec<String>>,
    #[serde(default)]
    unique: bool,
}

pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let body: CreateIndex = crate::http::extract::from_object(body, "index")?;
    let columns = match (body.column, body.columns) {
        (Some(column), None) => vec![column],
        (None, Some(columns)) => columns,
        _ => return Err(ApiError::bad_request("give either 'column' or 'columns'")),
    };
    let index = state.store().create_index(&name, &columns, body.unique).await?;
    Ok((StatusCode::CREATED, Json(index)).into_response())
}

pub async fn drop(
    _: Admin,
    State(state): State<AppState>,
    Path((name, column)): Path<(String, String)>,
) -> ApiResult<Response> {
    state.store().drop_index(&name, &column).await?;
    Ok(Json(json!({ "deleted": true })).into_response())
}
