//! The one middleware every routed request passes (one layer on the hot path, not four):
//! maintenance mode, a tables-surface request for another schema, the rate limit, then the
//! handler, measured for the metrics and, with JSON logs, written to the access log. Each
//! concern keeps its own module; this only orders them.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{access_log, middleware, ratelimit};
use crate::app::AppState;
use crate::metrics::Measure;

pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let measure = Measure::start(&state, &request);
    let entry = access_log::Entry::start(&state, &request);
    let refused = middleware::maintenance_refusal(&state, &request).or_else(|| profile_refusal(&request));
    let response = match refused {
        Some(refused) => refused,
        None => match ratelimit::ticket(&state, &request) {
            None => next.run(request).await,
            Some(ticket) => match ratelimit::spend(&state, ticket).await {
                Err(refused) => refused,
                Ok(budget) => {
                    let mut response = next.run(request).await;
                    ratelimit::budget_headers(&mut response, &budget);
                    response
                }
            },
        },
    };
    measure.finish(&response);
    if let Some(entry) = entry {
        entry.finish(&response);
    }
    response
}

/// A tables-surface request for another schema than the one served (see
/// `tables::profile_refusal`).
fn profile_refusal(request: &Request) -> Option<Response> {
    if !super::tables::is_tables_path(request.uri().path()) {
        return None;
    }
    super::tables::profile_refusal(request.method(), request.headers()).map(IntoResponse::into_response)
}
