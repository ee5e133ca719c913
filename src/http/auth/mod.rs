//! `/api/v1/auth/…` for both surfaces: the collections surface's `register`, `login`, `me`,
//! `magic-link`, … and the tables surface's `signup`, `signin`, `user`, `magiclink`, … share
//! handlers; only the shape of a 2FA challenge differs.

pub(crate) mod api_keys;
pub(crate) mod email;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod magic_link;
pub(crate) mod password;
pub(crate) mod profile;
pub(crate) mod register;
pub(crate) mod two_factor;

use serde_json::{Value as Json, json};

use crate::app::AppState;
use crate::auth::sessions::SessionOptions;
use crate::auth::{Tokens, User};
use crate::data::access::Principal;
use crate::error::ApiError;
use crate::http::extract::ClientInfo;
use crate::limits::MAX_USER_METADATA_BYTES;
use crate::mail::Mail;

/// Session lifetimes and policy from the runtime settings.
pub fn session_options(state: &AppState, client: ClientInfo) -> SessionOptions {
    let settings = state.settings();
    SessionOptions {
        access_ttl_secs: settings.get_i64("access_token_ttl_seconds").max(1),
        refresh_ttl_ms: settings.get_i64("refresh_token_ttl_days").max(1) * 24 * 3600 * 1000,
        reuse_interval_ms: settings.get_i64("refresh_token_reuse_interval_seconds").max(0) * 1000,
        single_session: settings.get_bool("single_session_mode"),
        impersonated: false,
        user_agent: client.user_agent,
        ip: client.ip,
    }
}

/// `{access_token, refresh_token, expires_in, token_type, user}`: what both surfaces answer
/// on sign-in.
pub fn token_response(tokens: &Tokens, user: &User) -> Json {
    json!({
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_in": tokens.expires_in,
        "token_type": "bearer",
        "user": user.view(),
    })
}

/// Signs `user` in: a new session and its tokens.
pub async fn sign_in(state: &AppState, user: &User, client: ClientInfo) -> Result<Json, ApiError> {
    let tokens = state.auth().start_session(user, &session_options(state, client)).await?;
    Ok(token_response(&tokens, user))
}

/// The password rules: at least `password_min_length` characters, at most 1024.
pub fn check_password(state: &AppState, password: &str) -> Result<(), ApiError> {
    let min = state.settings().get_i64("password_min_length").max(1) as usize;
    let len = password.chars().count();
    if len < min {
        return Err(ApiError::bad_field("password", format!("the password must have at least {min} characters")));
    }
    if len > 1024 {
        return Err(ApiError::bad_field("password", "the password must have at most 1024 characters"));
    }
    Ok(())
}

/// Sends mail without making the request wait for it: answers must not take longer when an
/// address exists (and so mail is sent) than when it does not.
pub fn send_in_background(state: &AppState, mail: Mail) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(err) = crate::mail::send(state.settings(), mail).await {
            tracing::error!(%err, "sending email failed");
        }
    });
}

/// A link into the frontend (`app_url`) carrying a one-time token.
pub fn link(state: &AppState, path: &str, token: &str) -> String {
    format!("{}/{path}?token={token}", state.settings().get_str("app_url").trim_end_matches('/'))
}

/// Credentials (the password, the email, 2FA, API keys) change only through the user's own
/// session. What an impersonation token set would outlast it, and give the admin a way back
/// into the account after its 15 minutes; what an API key set would outlast the key's expiry
/// and revocation.
pub fn own_session(principal: &Principal, what: &str) -> Result<(), ApiError> {
    if principal.impersonated {
        return Err(ApiError::Forbidden(format!("an impersonation token cannot {what}")));
    }
    if principal.api_key_id.is_some() {
        return Err(ApiError::Forbidden(format!("an API key cannot {what}: sign in to do it")));
    }
    Ok(())
}

/// A user's `metadata` (or `data`, as Supabase clients send it) from a request body: a JSON
/// object of at most [`MAX_USER_METADATA_BYTES`]; `None` when the body gives none.
pub fn metadata_of(body: &Json) -> Result<Option<Json>, ApiError> {
    // A null says as much as no metadata at all.
    let given = body.get("metadata").or_else(|| body.get("data")).filter(|m| !m.is_null());
    let Some(metadata) = given else { return Ok(None) };
    if !metadata.is_object() {
        return Err(ApiError::bad_field("metadata", "metadata must be a JSON object"));
    }
    if metadata.to_string().len() > MAX_USER_METADATA_BYTES {
        return Err(ApiError::bad_field(
            "metadata",
            format!("metadata must be at most {MAX_USER_METADATA_BYTES} bytes of JSON (MAX_USER_METADATA_BYTES)"),
        ));
    }
    Ok(Some(metadata.clone()))
}

/// The signed-in user's account (404 when it was deleted meanwhile).
pub async fn current_user(state: &AppState, id: &str) -> Result<User, ApiError> {
    state.auth().user_by_id(id).await?.ok_or_else(|| ApiError::not_found("user not found"))
}

/// A required string field of a JSON body.
pub fn required<'a>(body: &'a Json, field: &str) -> Result<&'a str, ApiError> {
    match body.get(field) {
        Some(Json::String(text)) if !text.is_empty() => Ok(text),
        Some(Json::String(_)) | Some(Json::Null) | None => {
            Err(ApiError::bad_field(field, format!("'{field}' is required")))
        }
        Some(_) => Err(ApiError::bad_field(field, format!("'{field}' must be a string"))),
    }
}
