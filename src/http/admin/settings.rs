//! `GET /api/v1/admin/settings` and `PATCH /api/v1/admin/settings`: runtime settings, typed;
//! write-only ones (credentials) are shown masked.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{Admin, JsonBody};

pub async fn get(_: Admin, State(state): State<AppState>) -> Response {
    Json(json!({ "settings": state.settings().snapshot() })).into_response()
}

/// `{key: value, …}`; every key must be known and every value of the setting's type. All
/// change or none does.
pub async fn update(_: Admin, State(state): State<AppState>, JsonBody(body): JsonBody<Value>) -> ApiResult<Response> {
    let changes = body.as_object().ok_or_else(|| ApiError::bad_request("the body must be an object of settings"))?;
    state.settings().update(changes).await?;
    Ok(Json(json!({ "settings": state.settings().snapshot() })).into_response())
}
