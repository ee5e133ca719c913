//! `POST /auth/api-keys`, `GET /auth/api-keys`, `DELETE /auth/api-keys/:id`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{JsonBody, Path, User};

/// `{name, expires_at?}` (Unix milliseconds) → the key, shown this once.
pub async fn create(
    State(state): State<AppState>,
    User(principal): User,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    super::own_session(&principal, "create API keys")?;
    // A key has the whole power of its user: a field such as `scopes` would promise a
    // narrower key than the one made, so any field but these is refused.
    if let Some(unknown) =
        body.as_object().and_then(|o| o.keys().find(|k| !["name", "expires_at"].contains(&k.as_str())))
    {
        let shown: String = unknown.chars().take(64).collect();
        return Err(ApiError::bad_field(
            &shown,
            format!(
                "unknown field '{shown}': an API key takes name and expires_at (it acts with all of its user's rights)"
            ),
        ));
    }
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    let expires_at = match body.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(v.as_i64().ok_or_else(|| ApiError::bad_field("expires_at", "expires_at must be Unix milliseconds"))?)
        }
    };
    // `own_session` above: a caller that is not an API key or an impersonation has one.
    let session = principal.session_id.as_deref().unwrap_or_default();
    let key = state.auth().create_api_key(session, &principal.id, name, expires_at).await?;
    Ok((StatusCode::CREATED, Json(key)).into_response())
}

pub async fn list(State(state): State<AppState>, User(principal): User) -> ApiResult<Response> {
    let keys = state.auth().list_api_keys(&principal.id).await?;
    Ok(Json(json!({ "api_keys": keys })).into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    User(principal): User,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if !state.auth().revoke_api_key(&principal.id, &id).await? {
        return Err(ApiError::not_found("API key not found"));
    }
    Ok(Json(json!({ "revoked": true })).into_response())
}
