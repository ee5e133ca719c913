//! The collections surface's file endpoints: `POST /storage/upload`, `GET /storage` (the
//! caller's files), `GET`/`DELETE /storage/{id}` and `GET /storage/{id}/{filename}`; and
//! the admin's `GET /admin/storage`, `POST /admin/storage/upload`, `DELETE /admin/storage/{id}`.
//! `/storage/{x}` paths whose `x` is not a file id belong to the tables surface
//! ([`super::objects`]).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::download::{self, Serve};
use super::form::{Uploader, receive_form};
use super::objects;
use super::parts::Form;
use crate::app::AppState;
use crate::data::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::files::meta::FilePage;
use crate::files::names::is_file_id;
use crate::http::admin::users::Paging;
use crate::http::extract::{Admin, Path, UniquePairs};

/// `POST /storage/upload`: a multipart form; with `?token=` (a signed upload URL) no
/// credentials are needed.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    UniquePairs(pairs): UniquePairs,
    request: Request,
) -> ApiResult<Response> {
    let uploader = Uploader::of(&state, caller, super::upload_token(&pairs, &[])?).await?;
    let form = Form::from_request(request, &state).await?;
    let file = receive_form(&state, &uploader, form).await?;
    Ok((StatusCode::CREATED, Json(file.to_json())).into_response())
}

/// `POST /admin/storage/upload`: the same form; the file has no owner.
pub async fn admin_upload(_: Admin, State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let uploader = Uploader { caller: Caller::Admin, owner: None, grant: None };
    let form = Form::from_request(request, &state).await?;
    let file = receive_form(&state, &uploader, form).await?;
    Ok((StatusCode::CREATED, Json(file.to_json())).into_response())
}

/// `GET /storage`: the caller's files, newest first (`page`, `limit`); the admin's call
/// lists everyone's.
pub async fn list_mine(
    State(state): State<AppState>,
    caller: Caller,
    UniquePairs(pairs): UniquePairs,
) -> ApiResult<Response> {
    let paging = Paging::parse(&pairs, &[])?;
    let owner = match &caller {
        Caller::User(principal) => Some(principal.id.as_str()),
        Caller::Admin => None,
        Caller::Anonymous => return Err(ApiError::Unauthorized("authentication required".into())),
    };
    let page = state.files().list_files(owner, None, paging.limit, paging.offset()).await?;
    Ok(Json(page_json(page, &paging)).into_response())
}

/// `GET /admin/storage`: every file, newest first (`page`, `limit`, `bucket`).
pub async fn admin_list(
    _: Admin,
    State(state): State<AppState>,
    UniquePairs(pairs): UniquePairs,
) -> ApiResult<Response> {
    let paging = Paging::parse(&pairs, &["bucket"])?;
    let bucket = pairs.iter().find(|(k, _)| k == "bucket").map(|(_, v)| v.as_str());
    let page = state.files().list_files(None, bucket, paging.limit, paging.offset()).await?;
    Ok(Json(page_json(page, &paging)).into_response())
}

fn page_json(page: FilePage, paging: &Paging) -> serde_json::Value {
    json!({"items": page.items, "total": page.total, "page": paging.page, "limit": paging.limit})
}

/// `GET /storage/{x}`: the file with id `x`, or (tables surface) the listing of bucket `x`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(x): Path<String>,
    UniquePairs(pairs): UniquePairs,
) -> ApiResult<Response> {
    one_segment(&state, &caller, &headers, &x, &pairs, false).await
}

/// `HEAD /storage/{x}`: as `GET`, told that it is a `HEAD` (a 304 then carries the file's
/// length, and the contents are not read).
pub async fn head_one(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(x): Path<String>,
    UniquePairs(pairs): UniquePairs,
) -> ApiResult<Response> {
    one_segment(&state, &caller, &headers, &x, &pairs, true).await
}

async fn one_segment(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    x: &str,
    pairs: &[(String, String)],
    head: bool,
) -> ApiResult<Response> {
    if !is_file_id(x) {
        return objects::list(state, caller, x, pairs).await;
    }
    download_by_id(state, caller, headers, x, pairs, head).await
}

/// `GET`/`HEAD /storage/{id}/{filename}` (the name only helps browsers), or a tables-surface
/// object when the first segment is a bucket.
pub async fn get_two(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((x, rest)): Path<(String, String)>,
    UniquePairs(pairs): UniquePairs,
) -> ApiResult<Response> {
    two_segments(&state, &caller, &headers, (&x, &rest), &pairs, false).await
}

pub async fn head_two(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((x, rest)): Path<(String, String)>,
    UniquePairs(pairs): UniquePairs,
) -> ApiResult<Response> {
    two_segments(&state, &caller, &headers, (&x, &rest), &pairs, true).await
}

/// `/storage/{x}/{rest}`: a file by id when `x` is one, else an object by bucket and key.
async fn two_segments(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    (x, rest): (&str, &str),
    pairs: &[(String, String)],
    head: bool,
) -> ApiResult<Response> {
    if is_file_id(x) {
        return download_by_id(state, caller, headers, x, pairs, head).await;
    }
    objects::download(state, caller, headers, x, rest, pairs, head).await
}

async fn download_by_id(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: &str,
    pairs: &[(String, String)],
    head: bool,
) -> ApiResult<Response> {
    let file = state.files().file(id).await?.ok_or_else(|| file_not_found(id))?;
    state.files().may_read(state.store(), &file, caller).await?;
    download::serve(state, &file, headers, Serve::asked(head, pairs)).await
}

/// `DELETE /storage/{id}`: the owner's or the admin's.
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(x): Path<String>) -> ApiResult<Response> {
    if !is_file_id(&x) {
        // A bucket is deleted at /storage/buckets/{bucket}; this path names files only.
        return Err(file_not_found(&x));
    }
    delete_file(&state, &caller, &x).await
}

pub async fn admin_delete(_: Admin, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    delete_file(&state, &Caller::Admin, &id).await
}

pub(super) async fn delete_file(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Response> {
    let file = state.files().file(id).await?.ok_or_else(|| file_not_found(id))?;
    state.files().may_change(&file, caller)?;
    state.files().delete_file(&file).await?;
    Ok(Json(json!({"deleted": true, "id": file.id})).into_response())
}

pub fn file_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("file '{}' not found", crate::files::names::truncate(id, 64)))
}
