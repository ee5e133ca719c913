//! `POST /auth/register` and `POST /auth/signup`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{check_password, link, required, send_in_background, sign_in};
use crate::app::AppState;
use crate::auth::one_time::{Holder, Purpose};
use crate::auth::{password, users};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ClientInfo, JsonBody};
use crate::mail::Mail;

/// `{email, password, metadata?}` (`data` is accepted for `metadata`, as Supabase clients
/// send it).
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    if !state.settings().get_bool("registration_open") {
        return Err(ApiError::Forbidden("registration is closed".into()));
    }
    let email = users::normalize_email(required(&body, "email")?)?;
    let pass = required(&body, "password")?;
    check_password(&state, pass)?;
    let metadata = super::metadata_of(&body)?.unwrap_or_else(|| json!({}));
    let hash = password::hash(pass).await?;
    let user = state.auth().create_user(&email, Some(hash), false, metadata).await?;
    send_verification(&state, &user).await?;
    if state.settings().get_bool("require_email_verification") {
        let answer = json!({ "user": user.view(), "email_verification_required": true });
        return Ok((StatusCode::CREATED, Json(answer)).into_response());
    }
    Ok((StatusCode::CREATED, Json(sign_in(&state, &user, client).await?)).into_response())
}

/// Mails a verification link to `user`.
pub async fn send_verification(state: &AppState, user: &crate::auth::User) -> ApiResult<()> {
    let holder = Holder { user_id: Some(user.id.clone()), email: Some(user.email.clone()) };
    let token = state.auth().issue_token(Purpose::VerifyEmail, &holder).await?;
    let app = state.settings().get_str("app_name");
    send_in_background(
        state,
        Mail {
            to: user.email.clone(),
            subject: format!("Verify your email for {app}"),
            text: format!(
                "Confirm your email address by opening this link:\n\n{}\n\nIt is valid for 24 hours.",
                link(state, "verify-email", &token)
            ),
        },
    );
    Ok(())
}
