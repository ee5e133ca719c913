//! `POST /auth/verify-email` and `POST /auth/resend-verification`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::register::send_verification;
use super::required;
use crate::app::AppState;
use crate::auth::one_time::Purpose;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{JsonBody, User};

pub async fn verify(State(state): State<AppState>, JsonBody(body): JsonBody<Value>) -> ApiResult<Response> {
    let token = required(&body, "token")?;
    let invalid = || ApiError::bad_field("token", "the verification token is invalid, used or expired");
    let holder = state.auth().consume_token(Purpose::VerifyEmail, token).await?.ok_or_else(invalid)?;
    let user = state.auth().user_by_id(holder.user_id.as_deref().unwrap_or("")).await?.ok_or_else(invalid)?;
    // A token mailed to an address the account no longer has proves nothing.
    if holder.email.as_deref() != Some(user.email.as_str()) {
        return Err(invalid());
    }
    state.auth().mark_email_verified(&user.id).await?;
    Ok(Json(json!({ "success": true, "email_verified": true })).into_response())
}

pub async fn resend(State(state): State<AppState>, User(principal): User) -> ApiResult<Response> {
    let user = super::current_user(&state, &principal.id).await?;
    if user.email_verified {
        return Ok(Json(json!({ "message": "The email address is already verified." })).into_response());
    }
    send_verification(&state, &user).await?;
    Ok(Json(json!({ "message": "A new verification link has been sent." })).into_response())
}
