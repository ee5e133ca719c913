//! HTTP: routers and extractors only. Handlers parse requests into domain types, call the
//! data layer, and shape the answer; they never build SQL. One file per endpoint group, so an
//! endpoint is found by its path.

mod access_log;
pub mod admin;
pub mod auth;
pub(crate) mod client_ip;
mod conditional;
pub mod extract;
mod gate;
mod metrics;
mod middleware;
pub mod openapi;
mod ratelimit;
pub mod records;
pub mod serve;
pub(crate) mod storage;
pub(crate) mod tables;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::app::AppState;

/// The whole API, with its middleware. Every route comes from the endpoint descriptors that
/// the OpenAPI document is built from ([`openapi::endpoints`]): an endpoint is declared once.
pub fn router(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    crate::metrics::handle();
    let mut router = Router::new();
    for op in openapi::endpoints() {
        if let Some((path, handler)) = op.route() {
            router = router.route(path, handler);
        }
    }
    let plain = router
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate::gate))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(middleware::limit_request_head))
        .layer(middleware::layers());
    let any_origin = plain.clone().layer(middleware::cors(tower_http::cors::Any.into()));
    let listed_origins = plain.clone().layer(middleware::cors(middleware::listed_origins(state.clone())));
    // CORS answers every OPTIONS request as a browser's preflight. One that is not a preflight
    // (no `Access-Control-Request-Method`) reaches its route instead (tus discovery), and one
    // from a page gets the headers of a CORS answer added (`simple_cors`).
    Router::new().fallback_service(tower::service_fn(move |request: axum::extract::Request| {
        use tower::ServiceExt;
        let plain_options = request.method() == axum::http::Method::OPTIONS
            && !request.headers().contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD);
        let from_page = match request.headers().get(axum::http::header::ORIGIN) {
            Some(origin) if plain_options => Some((origin.clone(), state.clone())),
            _ => None,
        };
        let service = if plain_options {
            plain.clone()
        } else if middleware::any_origin_allowed(&state) {
            any_origin.clone()
        } else {
            listed_origins.clone()
        };
        let tus = storage::resumable::speaks_tus(&request);
        let tables = tables::is_tables_path(request.uri().path());
        let answer = service.oneshot(request);
        async move {
            let mut response = answer.await?;
            if let Some((origin, state)) = from_page {
                middleware::simple_cors(&state, &origin, &mut response);
            }
            middleware::finish_answer(&mut response, tus);
            // Every error of the tables surface carries PostgREST's fields, whichever layer
            // gave it (a handler, the rate limiter, maintenance mode, the URL limit, a 405).
            if tables {
                response = tables::postgrest_fields(response).await;
            }
            Ok(response)
        }
    }))
}

/// Every route the server serves, as `(method, path template)`: what the OpenAPI document
/// lists.
pub fn routes() -> Vec<(&'static str, String)> {
    openapi::endpoints().iter().filter(|op| op.route().is_some()).map(|op| (op.method, op.path.clone())).collect()
}
