//! `GET /metrics`: the Prometheus text format. Gauges that are counts of stored things are
//! read when scraped; request series are recorded as requests go ([`crate::metrics::track`]).
//! With the setting `metrics_token` set, a scrape needs `Authorization: Bearer <token>` (or
//! the admin secret).

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::util::constant_time_eq;

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    record_gauges(&state).await;
    let body = crate::metrics::handle().render();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response())
}

fn authorize(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let token = state.settings().get_str("metrics_token");
    if token.is_empty() {
        return Ok(());
    }
    let sent = super::extract::bearer(headers).unwrap_or("");
    let allowed = constant_time_eq(sent.as_bytes(), token.as_bytes()) || state.is_admin_secret(sent);
    if allowed { Ok(()) } else { Err(ApiError::Unauthorized("the metrics token is required".into())) }
}

/// The gauges read at scrape time. A count that fails to read is left as it was (and logged).
async fn record_gauges(state: &AppState) {
    metrics::gauge!("ferrobase_uptime_seconds").set(state.uptime().as_secs_f64());
    for (label, value) in state.store().db.connection_gauges() {
        metrics::gauge!("ferrobase_db_connections", "state" => label).set(value);
    }
    let wal = state.config().data_dir.join("ferrobase.db-wal");
    if state.config().database_url.is_none() {
        let bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
        metrics::gauge!("ferrobase_sqlite_wal_bytes").set(bytes as f64);
    }
    match state.store().active_sessions().await {
        Ok(n) => metrics::gauge!("ferrobase_sessions_active").set(n as f64),
        Err(err) => tracing::warn!(%err, "metrics: counting sessions failed"),
    }
    match state.files().usage().await {
        Ok((_, files, bytes)) => {
            metrics::gauge!("ferrobase_storage_files").set(files as f64);
            metrics::gauge!("ferrobase_storage_bytes").set(bytes as f64);
        }
        Err(err) => tracing::warn!(%err, "metrics: measuring the file store failed"),
    }
}
