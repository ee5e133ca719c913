//! `POST /auth/logout` (`/auth/signout`) and `POST /auth/logout-all`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::User;

/// Ends the session of the access token used.
pub async fn logout(State(state): State<AppState>, User(principal): User) -> ApiResult<Response> {
    let session = principal
        .session_id
        .ok_or_else(|| ApiError::bad_request("an API key has no session to end: revoke the key instead"))?;
    state.auth().revoke_session(&session, Some(&principal.id)).await?;
    Ok(Json(json!({ "success": true })).into_response())
}

/// Ends every session and revokes every API key of the user.
pub async fn logout_all(State(state): State<AppState>, User(principal): User) -> ApiResult<Response> {
    let (sessions, keys) = state.auth().revoke_everything(&principal.id).await?;
    Ok(Json(json!({ "success": true, "sessions_revoked": sessions, "api_keys_revoked": keys })).into_response())
}
