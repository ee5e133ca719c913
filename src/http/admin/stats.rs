//! `GET /api/v1/admin/stats`: what the server holds and how long it has served.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::extract::Admin;

pub async fn stats(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let db = state.store().stats().await?;
    let (buckets, files, file_bytes) = state.files().usage().await?;
    Ok(Json(json!({
        "users": db.users,
        "sessions_active": db.sessions_active,
        "collections": db.collections,
        "records": db.records,
        "buckets": buckets,
        "files": files,
        "file_bytes": file_bytes,
        "database": state.store().db.dialect().name(),
        "database_bytes": db.database_bytes,
        "uptime_seconds": state.uptime().as_secs(),
        "requests": state.requests_served().load(std::sync::atomic::Ordering::Relaxed),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response())
}
