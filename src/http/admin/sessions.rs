//! `/api/v1/admin/sessions`: list (optionally of one user), revoke, purge ended ones.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::users::Paging;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{Admin, Path, QueryPairs};

pub async fn list(_: Admin, State(state): State<AppState>, QueryPairs(pairs): QueryPairs) -> ApiResult<Response> {
    let paging = Paging::parse(&pairs, &["user_id"])?;
    let user_id = pairs.iter().find(|(k, _)| k == "user_id").map(|(_, v)| v.as_str());
    let (items, total) = state.auth().list_sessions(user_id, paging.limit, paging.offset()).await?;
    Ok(Json(json!({ "items": items, "total": total, "page": paging.page, "limit": paging.limit })).into_response())
}

pub async fn revoke(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    if !state.auth().revoke_session(&id, None).await? {
        return Err(ApiError::not_found("no active session with this id"));
    }
    Ok(Json(json!({ "revoked": true, "id": id })).into_response())
}

/// Deletes expired and revoked sessions now, and the used or expired one-time tokens (what
/// the background purge deletes every ten minutes).
pub async fn purge(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let purged = state.auth().purge_sessions().await?;
    let (_, tokens) = state.auth().purge_expired().await?;
    Ok(Json(json!({ "purged": purged, "tokens_purged": tokens })).into_response())
}
