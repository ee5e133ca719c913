//! `GET /api/v1/admin/health`: public liveness and database check.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::data::Stmt;

pub async fn health(State(state): State<AppState>) -> Response {
    let db = state.store().db.clone();
    let backend = db.dialect().name();
    match db.read(Stmt::new("SELECT 1", vec![])).await {
        Ok(_) => {
            Json(json!({ "status": "ok", "database": backend, "version": env!("CARGO_PKG_VERSION") })).into_response()
        }
        Err(err) => {
            tracing::error!(%err, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": backend, "error": "database unreachable" })),
            )
                .into_response()
        }
    }
}
