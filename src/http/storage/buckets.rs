//! Buckets on both surfaces: `GET /storage/buckets`, `POST`/`DELETE /storage/buckets/{bucket}`
//! (tables surface) and `GET`/`POST /admin/buckets`, `PATCH`/`DELETE /admin/buckets/{name}`.
//! Listing needs a signed-in caller; creating, changing and deleting need the admin.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::data::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::files::buckets::{Bucket, BucketSettings};
use crate::http::extract::{Admin, JsonBody, Path, UniquePairs, from_object};

/// `GET /storage/buckets`: every bucket, as an array.
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    if matches!(caller, Caller::Anonymous) {
        return Err(ApiError::Unauthorized("authentication required".into()));
    }
    let buckets = state.files().list_buckets().await?;
    Ok(Json(buckets.iter().map(Bucket::to_json).collect::<Vec<_>>()).into_response())
}

/// `POST /storage/buckets/{bucket}`, with an optional JSON body of settings.
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let settings: BucketSettings = super::optional_object(request.into_body(), "bucket").await?;
    if settings.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::bad_field("name", "the body's name differs from the path's"));
    }
    let bucket = state.files().create_bucket(&name, settings).await?;
    Ok((StatusCode::CREATED, Json(bucket.to_json())).into_response())
}

/// `DELETE /storage/buckets/{bucket}`: 204, as the tables surface answers every delete.
/// `?force=true` deletes a bucket that still holds files, with them.
pub async fn delete(
    admin: Admin,
    state: State<AppState>,
    name: Path<String>,
    pairs: UniquePairs,
) -> ApiResult<Response> {
    admin_delete(admin, state, name, pairs).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /admin/buckets/{name}`: as `DELETE /storage/buckets/{bucket}`, answering how many
/// files went with the bucket.
pub async fn admin_delete(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    UniquePairs(pairs): UniquePairs,
) -> ApiResult<Response> {
    let mut force = false;
    for (key, value) in &pairs {
        match key.as_str() {
            "force" => force = super::flag("force", value)?,
            other => return Err(ApiError::bad_request(format!("unknown query parameter '{other}'"))),
        }
    }
    let files = state.files().delete_bucket(&name, force).await?;
    Ok(Json(json!({"deleted": true, "name": name, "files_deleted": files})).into_response())
}

/// `GET /admin/buckets`.
pub async fn admin_list(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let buckets = state.files().list_buckets().await?;
    Ok(Json(json!({"buckets": buckets.iter().map(Bucket::to_json).collect::<Vec<_>>()})).into_response())
}

/// `POST /admin/buckets`: `{name, is_public?, allowed_mime_types?, max_size_bytes?}`.
pub async fn admin_create(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let settings: BucketSettings = from_object(body, "bucket")?;
    let name = settings.name.clone().ok_or_else(|| ApiError::bad_field("name", "name is required"))?;
    let bucket = state.files().create_bucket(&name, settings).await?;
    Ok((StatusCode::CREATED, Json(bucket.to_json())).into_response())
}

/// `PATCH /admin/buckets/{name}`: the given settings change, the others stay.
pub async fn admin_update(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let settings: BucketSettings = from_object(body, "bucket")?;
    let bucket = state.files().update_bucket(&name, settings).await?;
    Ok(Json(bucket.to_json()).into_response())
}
