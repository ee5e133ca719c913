//! `POST /api/v1/admin/restart`: a graceful restart (see [`crate::restart`]) → 202. The new
//! process takes over the listening socket; this one finishes its in-flight requests and
//! exits. Only a server started as the `ferrobase` command (on Unix) can; otherwise 409.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::Admin;

pub async fn restart(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    if !state.config().restartable {
        return Err(ApiError::Conflict(
            "this server cannot restart itself: it was not started as the ferrobase command".into(),
        ));
    }
    state.request_restart();
    Ok((StatusCode::ACCEPTED, Json(json!({"restarting": true}))).into_response())
}
