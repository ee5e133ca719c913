//! `POST /auth/forgot-password` and `POST /auth/reset-password`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{check_password, link, required, send_in_background};
use crate::app::AppState;
use crate::auth::one_time::{Holder, Purpose};
use crate::auth::{password, users};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::mail::Mail;

/// Always the same answer, whether or not the address has an account.
pub async fn forgot(State(state): State<AppState>, JsonBody(body): JsonBody<Value>) -> ApiResult<Response> {
    let email = users::normalize_email(required(&body, "email")?)?;
    if let Some(user) = state.auth().user_by_email(&email).await? {
        let holder = Holder { user_id: Some(user.id.clone()), email: None };
        let token = state.auth().issue_token(Purpose::ResetPassword, &holder).await?;
        let app = state.settings().get_str("app_name");
        send_in_background(
            &state,
            Mail {
                to: user.email,
                subject: format!("Reset your {app} password"),
                text: format!(
                    "Choose a new password by opening this link:\n\n{}\n\nIt is valid for one hour. \
                     If you did not ask for this, ignore this email.",
                    link(&state, "reset-password", &token)
                ),
            },
        );
    }
    Ok(Json(json!({ "message": "If the address has an account, a reset link has been sent." })).into_response())
}

/// `{token, password}`: sets the password, ends every session and revokes every API key.
pub async fn reset(State(state): State<AppState>, JsonBody(body): JsonBody<Value>) -> ApiResult<Response> {
    let token = required(&body, "token")?;
    let new = required(&body, "password")?;
    check_password(&state, new)?;
    let holder = state
        .auth()
        .consume_token(Purpose::ResetPassword, token)
        .await?
        .ok_or_else(|| ApiError::bad_field("token", "the reset token is invalid, used or expired"))?;
    let user_id = holder.user_id.ok_or_else(|| ApiError::bad_field("token", "the reset token is invalid"))?;
    let hash = password::hash(new).await?;
    state.auth().set_password(&user_id, &hash).await?;
    let (sessions, keys) = state.auth().revoke_everything(&user_id).await?;
    Ok(Json(json!({ "success": true, "sessions_revoked": sessions, "api_keys_revoked": keys })).into_response())
}
