//! HTTP: routers and extractors only. Handlers parse requests into domain types, call the
//! data layer, and shape the answer; they never build SQL. One file per endpoint group, so an
//! endpoint is found by its path.

pub mod admin;
pub mod auth;
mod conditional;
pub mod extract;
mod middleware;
pub mod openapi;
pub mod records;
mod tables;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::app::AppState;

/// The whole API, with its middleware.
pub fn router(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::page))
        .route("/docs/{asset}", get(openapi::asset))
        .nest("/api/v1/admin", admin::router(state.clone()))
        .nest("/api/v1/auth", auth::router())
        .nest("/api/v1/tables", tables::router())
        .route("/api/v1/{collection}", get(records::list).post(records::create))
        .route("/api/v1/{collection}/count", get(records::count))
        .route("/api/v1/{collection}/aggregate", get(records::aggregate))
        .route("/api/v1/{collection}/bulk", post(records::bulk))
        .route("/api/v1/{collection}/batch", post(records::batch))
        .route("/api/v1/{collection}/{id}", get(records::get).patch(records::update).delete(records::delete))
        .route("/api/v1/{collection}/{id}/restore", post(records::restore))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
        .layer(axum::middleware::from_fn(middleware::limit_url))
        .layer(middleware::layers())
        .layer(middleware::cors())
}
