//! The access log (with `--log-format json`): one structured line per request with its
//! method, route template, status, duration, request id and user, on the log target
//! `ferrobase::access`. Never the query string, a header or a body: those carry tokens,
//! passwords and signed URLs.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;
use crate::util::constant_time_eq;

pub async fn log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.config().access_log {
        return next.run(request).await;
    }
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let user = caller(&state, &request);
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        target: "ferrobase::access",
        method,
        route,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id,
        user_id = user.as_deref().unwrap_or(""),
        "request"
    );
    response
}

/// Who called: a user's id (from a valid token), `admin`, `api-key`, or nobody.
fn caller(state: &AppState, request: &Request) -> Option<String> {
    let headers = request.headers();
    if headers.contains_key("x-api-key") {
        return Some("api-key".into());
    }
    let token = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    if constant_time_eq(token.as_bytes(), state.admin_secret().as_bytes()) {
        return Some("admin".into());
    }
    state.auth().token_subject(token)
}
