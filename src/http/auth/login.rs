//! `POST /auth/login`, `POST /auth/signin` and `POST /auth/refresh`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{required, session_options, sign_in, token_response};
use crate::app::AppState;
use crate::auth::one_time::{Holder, Purpose};
use crate::auth::{User, password, users};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ClientInfo, JsonBody};
use crate::util::now_ms;

/// Which surface asked: they phrase the 2FA challenge differently.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Collections,
    Tables,
}

pub async fn login(state: State<AppState>, client: ClientInfo, body: JsonBody<Value>) -> ApiResult<Response> {
    password_sign_in(state, client, body, Surface::Collections).await
}

pub async fn signin(state: State<AppState>, client: ClientInfo, body: JsonBody<Value>) -> ApiResult<Response> {
    password_sign_in(state, client, body, Surface::Tables).await
}

async fn password_sign_in(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Value>,
    surface: Surface,
) -> ApiResult<Response> {
    let email = users::normalize_email(required(&body, "email")?)?;
    let pass = required(&body, "password")?;
    let user = verify_credentials(&state, &email, pass).await?;
    if state.settings().get_bool("require_email_verification") && !user.email_verified {
        return Err(ApiError::Forbidden("verify your email address before signing in".into()));
    }
    Ok(Json(first_factor_passed(&state, &user, client, surface).await?).into_response())
}

/// What a sign-in answers once the first factor (a password, a magic link) is proven: the
/// tokens, or for a user with 2FA on the challenge that `/auth/2fa/verify` completes. Every
/// way of signing in ends here, so none skips the second factor.
pub async fn first_factor_passed(
    state: &AppState,
    user: &User,
    client: ClientInfo,
    surface: Surface,
) -> ApiResult<Value> {
    if !user.totp_enabled {
        return sign_in(state, user, client).await;
    }
    let holder = Holder { user_id: Some(user.id.clone()), email: None };
    let totp_token = state.auth().issue_token(Purpose::SecondFactor, &holder).await?;
    Ok(match surface {
        Surface::Collections => json!({ "totp_required": true, "totp_token": totp_token }),
        Surface::Tables => json!({ "requires_2fa": true, "user_id": user.id, "totp_token": totp_token }),
    })
}

/// The user whose password this is, honouring and updating the lockout. Unknown emails and
/// wrong passwords get the same answers (a lockout included), in about the same time.
///
/// The attempt is counted before the password is checked, in one statement, so that parallel
/// attempts cannot outrun the lockout: at most `lockout_max_attempts` passwords are tried
/// before it, whatever the concurrency. An email without an account is counted the same way.
pub async fn verify_credentials(state: &AppState, email: &str, pass: &str) -> ApiResult<User> {
    let settings = state.settings();
    let (max, lock_ms) = (settings.get_i64("lockout_max_attempts"), settings.get_i64("lockout_duration_ms"));
    let user = state.auth().user_by_email(email).await?;
    let user_id = user.as_ref().map(|u| u.id.as_str());
    let claim = state.auth().claim_sign_in(user_id, email).await?;
    if let Some(until) = claim.locked_until {
        return Err(locked(until));
    }
    if max > 0 && claim.count > max {
        // Attempts beyond the last allowed one are not tried while that one is under way: it
        // locks the account if it fails too, and clears the count if it succeeds.
        return Err(ApiError::Locked {
            message: "too many sign-ins of this account are under way at once: try again in a second".into(),
            retry_after_secs: 1,
        });
    }
    let ok = password::verify(pass, user.as_ref().and_then(|u| u.password_hash.as_deref())).await;
    match user {
        // With 2FA on, the sign-in ends only with a right code (which clears the count):
        // the password's own attempt is taken back, and the wrong codes counted so far stay,
        // so that signing in again never buys another round of code guesses.
        Some(user) if ok && user.totp_enabled => {
            state.auth().release_sign_in_attempt(&user.id).await?;
            Ok(user)
        }
        Some(user) if ok => {
            state.auth().reset_sign_in(&user.id).await?;
            Ok(user)
        }
        _ if max > 0 && claim.count >= max => {
            let until = now_ms() + lock_ms;
            state.auth().lock_sign_in(user_id, email, until).await?;
            tracing::warn!(user = ?user_id, "sign-ins locked after repeated failures");
            Err(locked(until))
        }
        _ => Err(ApiError::Unauthorized("invalid email or password".into())),
    }
}

/// Counts a failed sign-in (password or second factor) towards the lockout.
pub async fn record_failure(state: &AppState, user: &User) -> ApiResult<()> {
    let settings = state.settings();
    let max = settings.get_i64("lockout_max_attempts");
    let lock_ms = settings.get_i64("lockout_duration_ms");
    if let Some(until) = state.auth().record_failed_login(&user.id, max, lock_ms).await? {
        tracing::warn!(user = %user.id, "account locked after repeated failed sign-ins");
        return Err(locked(until));
    }
    Ok(())
}

/// 423 while the account is locked after failed sign-ins; every way of signing in checks it.
pub fn ensure_not_locked(user: &User) -> ApiResult<()> {
    match user.locked_until.filter(|until| *until > now_ms()) {
        Some(until) => Err(locked(until)),
        None => Ok(()),
    }
}

fn locked(until: i64) -> ApiError {
    let secs = ((until - now_ms()) / 1000).max(1) as u64;
    ApiError::Locked {
        message: format!("too many failed sign-ins: the account is locked for {secs} more seconds"),
        retry_after_secs: secs,
    }
}

pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let token = required(&body, "refresh_token")?;
    let (tokens, user) = state.auth().refresh(token, &session_options(&state, client)).await?;
    Ok(Json(token_response(&tokens, &user)).into_response())
}
