//! `GET /auth/me` (`GET /auth/user`), `DELETE /auth/me`, `PATCH /auth/user` and
//! `POST /auth/confirm-email-change`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::check_password;
use crate::app::AppState;
use crate::auth::one_time::{Holder, Purpose};
use crate::auth::password;
use crate::auth::users::{UserChange, normalize_email};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{JsonBody, User};
use crate::mail::Mail;

pub async fn me(State(state): State<AppState>, User(principal): User) -> ApiResult<Response> {
    let user = super::current_user(&state, &principal.id).await?;
    Ok(Json(user.view()).into_response())
}

/// Deletes the account; its sessions and API keys end with it. Only the user's own session
/// may: an API key or an impersonation cannot change the password, so neither may erase the
/// account.
pub async fn delete_me(State(state): State<AppState>, User(principal): User) -> ApiResult<Response> {
    super::own_session(&principal, "delete the account")?;
    state.auth().delete_user(&principal.id).await?;
    Ok(Json(json!({ "deleted": true })).into_response())
}

/// `{email?, password?, current_password?, metadata?|data?}`. A new email or password needs
/// the user's own session (not an API key or an impersonation) and the current password (a
/// wrong one counts towards the lockout); an account without a password confirms a new email
/// from a link mailed to its current address instead, and sets a password only through a
/// reset link. A new email must be verified again, from the link mailed to it; a new password
/// ends the user's other sessions.
pub async fn update(
    State(state): State<AppState>,
    User(principal): User,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    let user = super::current_user(&state, &principal.id).await?;
    let mut change = UserChange::default();
    let new_email = requested_email(&body, &user)?;
    let new_password = match body.get("password") {
        Some(new) => {
            let new = new.as_str().ok_or_else(|| ApiError::bad_field("password", "password must be a string"))?;
            check_password(&state, new)?;
            Some(new)
        }
        None => None,
    };
    if new_email.is_some() || new_password.is_some() {
        super::own_session(&principal, "change the email or the password")?;
    }
    // An account without a password (made by a magic link) sets its first one from a reset
    // link mailed to it: else whoever holds a token could set one, then use it as the
    // current password to move the account to another address at once.
    if new_password.is_some() && user.password_hash.is_none() {
        return Err(ApiError::Forbidden(
            "this account has no password: set one with a reset link (POST /auth/forgot-password)".into(),
        ));
    }
    if (new_email.is_some() || new_password.is_some()) && user.password_hash.is_some() {
        let current = body.get("current_password").and_then(Value::as_str).unwrap_or("");
        super::login::ensure_not_locked(&user)?;
        if !password::verify(current, user.password_hash.as_deref()).await {
            super::login::record_failure(&state, &user).await?;
            return Err(ApiError::bad_field("current_password", "the current password is wrong or missing"));
        }
    }
    if let Some(new) = new_password {
        change.password_hash = Some(password::hash(new).await?);
    }
    // Without a password, only the current address can vouch for the change.
    let pending_email = if user.password_hash.is_some() {
        change.email = new_email;
        None
    } else {
        new_email
    };
    change.metadata = super::metadata_of(&body)?;
    let email_changed = change.email.is_some();
    let updated = state.auth().update_user(&user.id, change).await?;
    if email_changed {
        // The new address is unverified: it gets its link, as a new account's does (else,
        // with `require_email_verification`, the user could not sign in again).
        super::register::send_verification(&state, &updated).await?;
    }
    if new_password.is_some() {
        state.auth().revoke_other_sessions(&user.id, principal.session_id.as_deref()).await?;
    }
    match pending_email {
        Some(email) => {
            request_email_change(&state, &user, &email).await?;
            let answer = json!({
                "user": updated.view(),
                "email_change_pending": true,
                "message": "Confirm the new address from the link sent to the current one.",
            });
            Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
        }
        None => Ok(Json(updated.view()).into_response()),
    }
}

/// The body's new email, when it differs from the current one.
fn requested_email(body: &Value, user: &crate::auth::User) -> ApiResult<Option<String>> {
    let Some(email) = body.get("email") else { return Ok(None) };
    let email = email.as_str().ok_or_else(|| ApiError::bad_field("email", "email must be a string"))?;
    let email = normalize_email(email)?;
    Ok((email != user.email).then_some(email))
}

/// Mails the current address a single-use link that moves the account to `new_email`.
async fn request_email_change(state: &AppState, user: &crate::auth::User, new_email: &str) -> ApiResult<()> {
    if state.auth().user_by_email(new_email).await?.is_some() {
        return Err(ApiError::Conflict("a user with this email already exists".into()));
    }
    let holder = Holder { user_id: Some(user.id.clone()), email: Some(new_email.to_owned()) };
    let token = state.auth().issue_token(Purpose::ChangeEmail, &holder).await?;
    let app = state.settings().get_str("app_name");
    super::send_in_background(
        state,
        Mail {
            to: user.email.clone(),
            subject: format!("Confirm the new email address of your {app} account"),
            text: format!(
                "Someone asked to change the email address of your account to {new_email}.\n\n\
                 To confirm, open this link:\n\n{}\n\nIt is valid for one hour. If this was not you, \
                 ignore this email: nothing changes.",
                super::link(state, "confirm-email-change", &token)
            ),
        },
    );
    Ok(())
}

/// `POST /auth/confirm-email-change {token}`: applies an email change confirmed from the
/// link mailed to the old address. The new address must then be verified.
pub async fn confirm_email_change(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let token = super::required(&body, "token")?;
    let invalid = || ApiError::bad_field("token", "the confirmation token is invalid, used or expired");
    let holder = state.auth().consume_token(Purpose::ChangeEmail, token).await?.ok_or_else(invalid)?;
    let (Some(user_id), Some(email)) = (holder.user_id, holder.email) else { return Err(invalid()) };
    let change = UserChange { email: Some(email), ..UserChange::default() };
    let updated = state.auth().update_user(&user_id, change).await?;
    super::register::send_verification(&state, &updated).await?;
    Ok(Json(updated.view()).into_response())
}
