//! `/api/v1/admin/users`: list (paged, searchable by email), delete, set roles, impersonate.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::sessions::SessionOptions;
use crate::data::query::parse;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{Admin, ClientInfo, JsonBody, Path, QueryPairs};
use crate::limits::{MAX_ROLE_NAME_BYTES, MAX_ROLES};

/// How long an impersonation token lives.
const IMPERSONATION_SECS: i64 = 15 * 60;

/// `?page=&limit=&search=` → `{items, total, page, limit}`.
pub async fn list(_: Admin, State(state): State<AppState>, QueryPairs(pairs): QueryPairs) -> ApiResult<Response> {
    let paging = Paging::parse(&pairs, &["search"])?;
    let search = pairs.iter().find(|(k, _)| k == "search").map(|(_, v)| v.as_str()).filter(|s| !s.is_empty());
    let (users, total) = state.auth().list_users(search, paging.limit, paging.offset()).await?;
    let items: Vec<Value> = users.iter().map(|u| u.view()).collect();
    Ok(Json(json!({ "items": items, "total": total, "page": paging.page, "limit": paging.limit })).into_response())
}

pub async fn delete(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    if !state.auth().delete_user(&id).await? {
        return Err(ApiError::not_found("user not found"));
    }
    Ok(Json(json!({ "deleted": true, "id": id })).into_response())
}

/// `{roles: ["editor", …]}` → the user.
pub async fn set_roles(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let mut roles: Vec<String> = body
        .get("roles")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_field("roles", "'roles' must be an array of role names"))?
        .iter()
        .map(|r| match r.as_str().map(str::trim) {
            Some(name) if !name.is_empty() && name.len() <= MAX_ROLE_NAME_BYTES => Ok(name.to_owned()),
            _ => Err(ApiError::bad_field(
                "roles",
                format!("each role must be a name of 1 to {MAX_ROLE_NAME_BYTES} bytes (MAX_ROLE_NAME_BYTES)"),
            )),
        })
        .collect::<Result<_, _>>()?;
    // A role held twice is held once (`" editor "` and `"editor"` are one role).
    let mut seen = std::collections::HashSet::new();
    roles.retain(|role| seen.insert(role.clone()));
    if roles.len() > MAX_ROLES {
        return Err(ApiError::bad_field("roles", format!("a user may hold at most {MAX_ROLES} roles (MAX_ROLES)")));
    }
    let user = state.auth().set_roles(&id, &roles).await?.ok_or_else(|| ApiError::not_found("user not found"))?;
    Ok(Json(user.view()).into_response())
}

/// A 15-minute access token acting as the user, marked as impersonated; it cannot be
/// refreshed.
pub async fn impersonate(
    _: Admin,
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let user = state.auth().user_by_id(&id).await?.ok_or_else(|| ApiError::not_found("user not found"))?;
    let opts = SessionOptions {
        access_ttl_secs: IMPERSONATION_SECS,
        impersonated: true,
        user_agent: client.user_agent,
        ip: client.ip,
        ..SessionOptions::default()
    };
    let tokens = state.auth().start_session(&user, &opts).await?;
    let answer = json!({
        "access_token": tokens.access_token,
        "expires_in": tokens.expires_in,
        "token_type": "bearer",
        "impersonated": true,
        "user": user.view(),
    });
    Ok(Json(answer).into_response())
}

/// `page` and `limit` of admin lists (default 50, at most 500); other keys must be in
/// `allowed`.
pub struct Paging {
    pub page: u32,
    pub limit: u32,
}

impl Paging {
    pub fn parse(pairs: &[(String, String)], allowed: &[&str]) -> ApiResult<Paging> {
        let mut paging = Paging { page: 1, limit: crate::data::query::DEFAULT_LIMIT };
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => paging.limit = parse::limit(value)?,
                "page" => {
                    paging.page = value.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                        ApiError::bad_request(format!("page must be a whole number from 1 to {}", u32::MAX))
                    })?
                }
                other if allowed.contains(&other) => {}
                other => return Err(ApiError::bad_request(format!("unknown query parameter '{other}'"))),
            }
        }
        Ok(paging)
    }

    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }
}
