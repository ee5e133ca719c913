//! Magic links: `POST /auth/magic-link` (`/auth/magiclink`) mails a single-use 15-minute link;
//! `POST /auth/magic-link/verify`, `POST /auth/magiclink/verify` and
//! `GET /auth/magiclink/verify?token=` sign in with it. A link to an address without an account
//! creates the account on verification while registration is open.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::login::{Surface, first_factor_passed};
use super::{link, required, send_in_background};
use crate::app::AppState;
use crate::auth::one_time::{Holder, Purpose};
use crate::auth::users;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ClientInfo, JsonBody, QueryPairs};
use crate::mail::Mail;

/// Always the same answer, whether or not the address has an account.
pub async fn request(State(state): State<AppState>, JsonBody(body): JsonBody<Value>) -> ApiResult<Response> {
    let email = users::normalize_email(required(&body, "email")?)?;
    let user = state.auth().user_by_email(&email).await?;
    if user.is_some() || state.settings().get_bool("registration_open") {
        let holder = Holder { user_id: user.map(|u| u.id), email: Some(email.clone()) };
        let token = state.auth().issue_token(Purpose::MagicLink, &holder).await?;
        let app = state.settings().get_str("app_name");
        send_in_background(
            &state,
            Mail {
                to: email,
                subject: format!("Your {app} sign-in link"),
                text: format!(
                    "Sign in by opening this link:\n\n{}\n\nIt is valid for 15 minutes and works once.",
                    link(&state, "magic-link", &token)
                ),
            },
        );
    }
    Ok(Json(json!({ "message": "If the address can sign in, a link has been sent." })).into_response())
}

/// `POST /auth/magic-link/verify` (collections surface).
pub async fn verify_post(
    state: State<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let token = required(&body, "token")?.to_owned();
    verify(state, client, &token, Surface::Collections).await
}

/// `POST /auth/magiclink/verify` (tables surface).
pub async fn verify_post_tables(
    state: State<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let token = required(&body, "token")?.to_owned();
    verify(state, client, &token, Surface::Tables).await
}

/// `GET /auth/magiclink/verify?token=` (tables surface).
pub async fn verify_get(
    state: State<AppState>,
    client: ClientInfo,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let token = pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_field("token", "'token' is required"))?;
    verify(state, client, &token, Surface::Tables).await
}

/// Spends the link and signs in; a user with 2FA on gets the second-factor challenge, as a
/// password sign-in does.
async fn verify(
    State(state): State<AppState>,
    client: ClientInfo,
    token: &str,
    surface: Surface,
) -> ApiResult<Response> {
    let invalid = || ApiError::bad_field("token", "the magic link is invalid, used or expired");
    let holder = state.auth().peek_token(Purpose::MagicLink, token).await?.ok_or_else(invalid)?;
    let email = holder.email.ok_or_else(invalid)?;
    let existing = state.auth().user_by_email(&email).await?;
    // A link that would make an account while registration is closed is refused as such,
    // and kept: it works once registration opens again.
    let registers = existing.is_none() && holder.user_id.is_none();
    if registers && !state.settings().get_bool("registration_open") {
        return Err(ApiError::Forbidden("registration is closed".into()));
    }
    state.auth().consume_token(Purpose::MagicLink, token).await?.ok_or_else(invalid)?;
    let user = match existing {
        Some(user) => user,
        // The address may have been registered since it was looked up (a sign-up, another
        // link): the link proves the address, so it signs in to that account instead of
        // failing after being spent.
        None if registers => match state.auth().create_user(&email, None, true, json!({})).await {
            Err(ApiError::Conflict(_)) => state.auth().user_by_email(&email).await?.ok_or_else(invalid)?,
            made => made?,
        },
        None => return Err(invalid()),
    };
    super::login::ensure_not_locked(&user)?;
    // Opening the link proves the address. An account whose address was never proven may
    // have been made by someone else before its owner came: it is the owner's from now on.
    if !user.email_verified {
        state.auth().claim_unproven_account(&user.id).await?;
    }
    let user = state.auth().user_by_id(&user.id).await?.ok_or_else(invalid)?;
    Ok(Json(first_factor_passed(&state, &user, client, surface).await?).into_response())
}
