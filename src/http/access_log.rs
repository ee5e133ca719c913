//! The access log (with `--log-format json`): one structured line per request with its
//! method, route template, status, duration, request id and user, on the log target
//! `ferrobase::access`. Never the query string, a header or a body: those carry tokens,
//! passwords and signed URLs.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;

use crate::app::AppState;

/// A request to log once answered.
pub struct Entry {
    route: String,
    method: String,
    request_id: String,
    user: Option<String>,
    started: Instant,
}

impl Entry {
    /// `None` unless the access log is on.
    pub fn start(state: &AppState, request: &Request) -> Option<Entry> {
        if !state.config().access_log {
            return None;
        }
        let headers = request.headers();
        Some(Entry {
            route: request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned(),
            method: request.method().to_string(),
            request_id: headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned(),
            user: caller(state, request),
            started: Instant::now(),
        })
    }

    pub fn finish(self, response: &Response) {
        tracing::info!(
            target: "ferrobase::access",
            method = self.method,
            route = self.route,
            status = response.status().as_u16(),
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            request_id = self.request_id,
            user_id = self.user.as_deref().unwrap_or(""),
            "request"
        );
    }
}

/// Who called: a user's id (from a valid token), `admin`, `api-key`, or nobody.
fn caller(state: &AppState, request: &Request) -> Option<String> {
    let headers = request.headers();
    if headers.contains_key("x-api-key") {
        return Some("api-key".into());
    }
    let token = super::extract::bearer(headers)?;
    if state.is_admin_secret(token) {
        return Some("admin".into());
    }
    state.auth().token_subject(token)
}
