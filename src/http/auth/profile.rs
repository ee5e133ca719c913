//! `GET /auth/me` (`GET /auth/user`), `DELETE /auth/me`, `PATCH /auth/user`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::check_password;
use crate::app::AppState;
use crate::auth::password;
use crate::auth::users::{UserChange, normalize_email};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{JsonBody, User};

pub async fn me(State(state): State<AppState>, User(principal): User) -> ApiResult<Response> {
    let user = super::current_user(&state, &principal.id).await?;
    Ok(Json(user.view()).into_response())
}

/// Deletes the account; its sessions and API keys end with it.
pub async fn delete_me(State(state): State<AppState>, User(principal): User) -> ApiResult<Response> {
    state.auth().delete_user(&principal.id).await?;
    Ok(Json(json!({ "deleted": true })).into_response())
}

/// `{email?, password?, current_password?, metadata?|data?}`. A new password needs the
/// current one (when the account has one); a new email must be verified again.
pub async fn update(
    State(state): State<AppState>,
    User(principal): User,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let user = super::current_user(&state, &principal.id).await?;
    let mut change = UserChange::default();
    if let Some(email) = body.get("email") {
        let email = email.as_str().ok_or_else(|| ApiError::bad_field("email", "email must be a string"))?;
        let email = normalize_email(email)?;
        if email != user.email {
            change.email = Some(email);
        }
    }
    if let Some(new) = body.get("password") {
        let new = new.as_str().ok_or_else(|| ApiError::bad_field("password", "password must be a string"))?;
        check_password(&state, new)?;
        if user.password_hash.is_some() {
            let current = body.get("current_password").and_then(Value::as_str).unwrap_or("");
            if !password::verify(current, user.password_hash.as_deref()).await {
                return Err(ApiError::bad_field("current_password", "the current password is wrong or missing"));
            }
        }
        change.password_hash = Some(password::hash(new).await?);
    }
    if let Some(metadata) = body.get("metadata").or_else(|| body.get("data")) {
        if !metadata.is_object() {
            return Err(ApiError::bad_field("metadata", "metadata must be a JSON object"));
        }
        change.metadata = Some(metadata.clone());
    }
    let updated = state.auth().update_user(&user.id, change).await?;
    Ok(Json(updated.view()).into_response())
}
