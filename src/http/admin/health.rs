//! `GET /api/v1/admin/health`: public; checks the database and the file store, 503 when
//! either is down.

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
    let (database, storage) = tokio::join!(db.read(Stmt::new("SELECT 1", vec![])), state.files().blobs.probe());
    if let Err(err) = &database {
        tracing::error!(%err, "health check: database unreachable");
    }
    if let Err(err) = &storage {
        tracing::error!(%err, "health check: file store unreachable");
    }
    let status = |ok: bool| if ok { "ok" } else { "unavailable" };
    let healthy = database.is_ok() && storage.is_ok();
    let mut body = json!({
        "status": status(healthy),
        "database": backend,
        "checks": {"database": status(database.is_ok()), "storage": status(storage.is_ok())},
        // The kind only: the path or bucket is no business of a public endpoint.
        "storage": state.files().blobs.description.split(':').next(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    if state.config().database_url.is_some() {
        // Whether the changes of other instances reach this one at once. Not a failure when
        // they do not: its caches then catch up through their periodic re-reads.
        body["checks"]["feed"] = json!(if *state.store().listening.borrow() { "listening" } else { "not listening" });
    }
    if healthy {
        return (StatusCode::OK, Json(body)).into_response();
    }
    body["error"] = json!("the database or the file store is unavailable");
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
