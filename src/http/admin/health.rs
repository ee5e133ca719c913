//! `GET /api/v1/admin/health`: public; checks the database and the file store, 503 when
//! either is down.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::data::Stmt;

/// How long each check may take: a database or store that does not answer within it is down,
/// so that a load balancer takes the instance out of rotation rather than waiting on it.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A check's outcome, a failure when it takes longer than [`CHECK_TIMEOUT`].
async fn within<E: std::fmt::Display>(check: impl Future<Output = Result<(), E>>) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => result.map_err(|err| err.to_string()),
        Err(_) => Err(format!("no answer within {} seconds", CHECK_TIMEOUT.as_secs())),
    }
}

pub async fn health(State(state): State<AppState>) -> Response {
    let db = state.store().db.clone();
    let backend = db.dialect().name();
    let database = async { db.read(Stmt::new("SELECT 1", vec![])).await.map(|_| ()) };
    let (database, storage) = tokio::join!(within(database), within(state.files().blobs.probe()));
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
