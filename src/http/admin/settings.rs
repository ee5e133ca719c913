//! `/api/v1/admin/settings`: read and change the runtime settings (write-only ones shown
//! masked), the audit log of changes, export to a JSON file and import from one, and a test
//! email through the configured provider.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{Admin, JsonBody, QueryPairs};

/// Who the audit log names for changes made with the admin secret.
const ADMIN_ACTOR: &str = "admin";

pub async fn get(_: Admin, State(state): State<AppState>) -> Response {
    Json(json!({ "settings": state.settings().snapshot() })).into_response()
}

/// `{key: value, …}`; every key must be known and every value one the setting takes. All
/// change or none does.
pub async fn update(_: Admin, State(state): State<AppState>, JsonBody(body): JsonBody<Value>) -> ApiResult<Response> {
    let changes = body.as_object().ok_or_else(|| ApiError::bad_request("the body must be an object of settings"))?;
    state.settings().update(changes, ADMIN_ACTOR).await?;
    announce(&state).await;
    Ok(Json(json!({ "settings": state.settings().snapshot() })).into_response())
}

/// Tells the other instances; they would re-read within the refresh interval anyway, so a
/// failure is only logged.
async fn announce(state: &AppState) {
    if let Err(err) = state.store().announce_settings_change().await {
        tracing::warn!(%err, "announcing a settings change to other instances failed");
    }
}

/// `GET /admin/settings/audit?limit=&offset=`: changes, newest first.
pub async fn audit(_: Admin, State(state): State<AppState>, QueryPairs(pairs): QueryPairs) -> ApiResult<Response> {
    let (mut limit, mut offset) = (50u32, 0u64);
    for (key, value) in &pairs {
        match key.as_str() {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| ApiError::bad_field("limit", "limit must be a whole number from 1 to 500"))?
            }
            "offset" => {
                offset = value.parse().map_err(|_| ApiError::bad_field("offset", "offset must be a whole number"))?
            }
            other => return Err(ApiError::bad_request(format!("unknown query parameter '{other}'"))),
        }
    }
    let (items, total) = state.settings().audit(limit, offset).await?;
    Ok(Json(json!({"items": items, "total": total, "limit": limit, "offset": offset})).into_response())
}

/// The format of a settings export (`ferrobase_settings`).
const SETTINGS_FORMAT: u32 = 1;

/// The fields of a settings export.
const EXPORT_FIELDS: [&str; 3] = ["ferrobase_settings", "exported_at", "settings"];

/// `GET /admin/settings/export`: every setting as a JSON file, secrets masked.
pub async fn export(_: Admin, State(state): State<AppState>) -> Response {
    let file = json!({
        "ferrobase_settings": SETTINGS_FORMAT,
        "exported_at": crate::util::now_ms(),
        "settings": state.settings().snapshot(),
    });
    let disposition = "attachment; filename=\"ferrobase-settings.json\"";
    ([(header::CONTENT_DISPOSITION, disposition)], Json(file)).into_response()
}

/// `POST /admin/settings/import`: an export (`{"settings": {…}}`) or a plain object of
/// settings, validated as a whole and applied all or nothing; masked secrets keep the stored
/// value. → `{imported: [keys that changed], settings}`.
pub async fn import(_: Admin, State(state): State<AppState>, JsonBody(body): JsonBody<Value>) -> ApiResult<Response> {
    let object = body.as_object().ok_or_else(|| ApiError::bad_request("the body must be an object of settings"))?;
    // An export names its format; one of a later format may mean what this server cannot read.
    if let Some(format) = object.get("ferrobase_settings")
        && format != &json!(SETTINGS_FORMAT)
    {
        return Err(ApiError::bad_field(
            "ferrobase_settings",
            format!("this server reads settings exports of format {SETTINGS_FORMAT}, not {format}"),
        ));
    }
    let settings: Map<String, Value> = match object.get("settings") {
        Some(Value::Object(inner)) => inner.clone(),
        Some(_) => return Err(ApiError::bad_field("settings", "settings must be an object")),
        None => object.clone(),
    };
    // An export holds its settings and the fields it was written with, nothing else: a
    // setting beside `settings` would be dropped without a word.
    if object.contains_key("settings")
        && let Some(stray) = object.keys().find(|k| !EXPORT_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::bad_field(
            stray,
            format!("'{stray}' is not a field of a settings export: put settings inside \"settings\""),
        ));
    }
    if object.contains_key("settings") && object.get("exported_at").is_some_and(|at| !at.is_i64()) {
        return Err(ApiError::bad_field("exported_at", "exported_at must be Unix milliseconds, as exports write it"));
    }
    let changed = state.settings().update(&settings, "admin (import)").await?;
    announce(&state).await;
    Ok(Json(json!({ "imported": changed, "settings": state.settings().snapshot() })).into_response())
}

/// `POST /admin/settings/test-email` `{to}`: sends a test email through the configured
/// provider and reports how it went: `{sent: true, provider, to}`, or `{sent: false, provider,
/// to, error}` with the provider's answer (a configuration to fix, not a server fault).
pub async fn test_email(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let to = body
        .get("to")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|to| to.contains('@') && !to.contains(['\r', '\n']))
        .ok_or_else(|| ApiError::bad_field("to", "to must be an email address"))?;
    let provider = state.settings().get_str("email_provider");
    let app = state.settings().get_str("app_name");
    let mail = crate::mail::Mail {
        to: to.to_owned(),
        subject: format!("{app}: test email"),
        text: format!("This is a test email from {app}, sent with the '{provider}' provider."),
    };
    let answer = match crate::mail::send(state.settings(), mail).await {
        Ok(()) => json!({"sent": true, "provider": provider, "to": to}),
        Err(err) => json!({"sent": false, "provider": provider, "to": to, "error": err.to_string()}),
    };
    Ok(Json(answer).into_response())
}
