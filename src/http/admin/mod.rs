//! The admin API under `/api/v1/admin`. Everything but `health` needs the admin secret,
//! which the [`Admin`](super::extract::Admin) extractor checks in each handler.

mod collections;
mod health;
mod indexes;
mod records;
mod relations;
mod sessions;
mod settings;
mod users;

use axum::Router;
use axum::routing::{delete, get, patch, post, put};

use crate::app::AppState;

pub fn router(_state: AppState) -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/collections", get(collections::list).post(collections::create))
        .route("/collections/{name}", get(collections::get).patch(collections::update).delete(collections::drop))
        .route("/collections/{name}/schema", get(collections::schema))
        .route("/collections/{name}/rules", put(collections::set_rules))
        .route("/collections/{name}/schema/{column}", delete(collections::drop_column))
        .route("/collections/{name}/records", get(records::list).post(records::create))
        .route("/collections/{name}/records/{id}", get(records::get).patch(records::update).delete(records::delete))
        .route("/collections/{name}/indexes", get(indexes::list).post(indexes::create))
        .route("/collections/{name}/indexes/{column}", delete(indexes::drop))
        .route("/users", get(users::list))
        .route("/users/{id}", delete(users::delete))
        .route("/users/{id}/roles", patch(users::set_roles))
        .route("/users/{id}/impersonate", post(users::impersonate))
        .route("/sessions", get(sessions::list))
        .route("/sessions/purge", post(sessions::purge))
        .route("/sessions/{id}", delete(sessions::revoke))
        .route("/settings", get(settings::get).patch(settings::update))
        .route("/relations", get(relations::list).post(relations::create))
        .route("/relations/{id}", delete(relations::delete))
}
