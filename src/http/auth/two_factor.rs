//! TOTP 2FA: `POST /auth/2fa/setup`, `POST /auth/2fa/enable`, `DELETE /auth/2fa/disable`, and
//! `POST /auth/2fa/verify`, the second step of a sign-in.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::login::record_failure;
use super::{current_user, required, sign_in};
use crate::app::AppState;
use crate::auth::one_time::Purpose;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ClientInfo, JsonBody, User};

pub async fn setup(State(state): State<AppState>, User(principal): User) -> ApiResult<Response> {
    super::own_session(&principal, "set up two-factor authentication")?;
    let user = current_user(&state, &principal.id).await?;
    let issuer = state.settings().get_str("app_name");
    let setup = state.auth().totp_setup(&user, &issuer).await?;
    Ok(Json(json!({ "secret": setup.secret, "otpauth_url": setup.otpauth_url, "uri": setup.otpauth_url }))
        .into_response())
}

pub async fn enable(
    State(state): State<AppState>,
    User(principal): User,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    super::own_session(&principal, "enable two-factor authentication")?;
    let code = required(&body, "code")?;
    let user = current_user(&state, &principal.id).await?;
    super::login::ensure_not_locked(&user)?;
    let recovery_codes = count_wrong_code(&state, &user, state.auth().totp_enable(&user, code).await).await?;
    Ok(Json(json!({ "enabled": true, "recovery_codes": recovery_codes })).into_response())
}

pub async fn disable(
    State(state): State<AppState>,
    User(principal): User,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    super::own_session(&principal, "disable two-factor authentication")?;
    let code = required(&body, "code")?;
    let user = current_user(&state, &principal.id).await?;
    super::login::ensure_not_locked(&user)?;
    count_wrong_code(&state, &user, state.auth().totp_disable(&user, code).await).await?;
    Ok(Json(json!({ "enabled": false })).into_response())
}

/// A wrong code counts towards the lockout, as at sign-in, so that a session's holder cannot
/// guess codes (of an enabled 2FA, to turn it off) any faster than a stranger signing in.
async fn count_wrong_code<T>(state: &AppState, user: &crate::auth::User, result: ApiResult<T>) -> ApiResult<T> {
    if let Err(ApiError::BadRequest { field: Some(field), .. }) = &result
        && field == "code"
    {
        record_failure(state, user).await?;
    }
    result
}

/// `{totp_token, code}`: a TOTP code or a recovery code finishes the sign-in. Wrong codes count
/// towards the lockout, so the code cannot be guessed.
pub async fn verify(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let token = required(&body, "totp_token")?;
    let code = required(&body, "code")?;
    let invalid_token = || ApiError::Unauthorized("the 2FA token is invalid, used or expired".into());
    let holder = state.auth().peek_token(Purpose::SecondFactor, token).await?.ok_or_else(invalid_token)?;
    let user = state.auth().user_by_id(holder.user_id.as_deref().unwrap_or("")).await?.ok_or_else(invalid_token)?;
    super::login::ensure_not_locked(&user)?;
    if !state.auth().second_factor_ok(&user, code).await? {
        record_failure(&state, &user).await?;
        return Err(ApiError::Unauthorized("invalid code".into()));
    }
    state.auth().consume_token(Purpose::SecondFactor, token).await?.ok_or_else(invalid_token)?;
    state.auth().clear_failed_logins(&user).await?;
    Ok(Json(sign_in(&state, &user, client).await?).into_response())
}
