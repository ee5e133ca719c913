//! `/api/v1/storage/resumable`: the tus 1.0 protocol (core, creation, expiration,
//! termination) over [`crate::files::resumable`], authorised like `POST /storage/upload`.
//! `Upload-Metadata` carries the form's fields: `filename`, `filetype`, `bucket`, `key`,
//! `is_public`, `collection`, `record_id`. Once complete, answers name the file in
//! `Ferrobase-File-Id` and `Ferrobase-File-Url`.
//!
//! An upload started with a signed upload URL (`?token=`) spends the URL's single use, and its
//! `Location` carries a token of its own that lets whoever holds it go on with that upload
//! (and only that one) until it expires: its client has no credentials to show.

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::BodySource;
use super::form::{Fields, Uploader, settle};
use crate::app::AppState;
use crate::data::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::files::names::{check_key, clean_filename};
use crate::files::resumable::{Appended, Resumable, metadata_type};
use crate::files::signing::{Action, Grant};
use crate::files::upload::NewFile;
use crate::http::extract::{Path, UniquePairs};

const TUS_VERSION: &str = "1.0.0";
const TUS_EXTENSIONS: &str = "creation,expiration,termination";
use crate::limits::MAX_UPLOAD_METADATA_BYTES;

/// The protocol's headers, for CORS to let browsers read them.
pub const EXPOSED_HEADERS: &[&str] = &[
    "upload-offset",
    "upload-length",
    "upload-metadata",
    "upload-expires",
    "tus-resumable",
    "tus-version",
    "tus-extension",
    "tus-max-size",
    "ferrobase-file-id",
    "ferrobase-file-url",
];

/// `OPTIONS`: what this server speaks.
pub async fn options(State(state): State<AppState>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    set(&mut response, "tus-resumable", TUS_VERSION);
    set(&mut response, "tus-version", TUS_VERSION);
    set(&mut response, "tus-extension", TUS_EXTENSIONS);
    set(&mut response, "tus-max-size", &state.files().max_upload_bytes.to_string());
    response
}

/// `POST`: a new upload of `Upload-Length` bytes → 201 with its `Location`.
pub async fn create(state: State<AppState>, caller: Caller, query: UniquePairs, headers: HeaderMap) -> Response {
    tus_answer(create_upload(state, caller, query, headers).await)
}

/// Who asks about or adds to an upload: the caller, and the `token` of the upload's URL when
/// a signed upload URL started it.
pub struct Requester {
    caller: Caller,
    token: Option<String>,
}

impl FromRequestParts<AppState> for Requester {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let UniquePairs(pairs) = UniquePairs::from_request_parts(parts, state).await?;
        Ok(Requester { caller, token: super::token(&pairs).map(str::to_owned) })
    }
}

/// `HEAD`: how many bytes the upload holds.
pub async fn head(state: State<AppState>, who: Requester, headers: HeaderMap, id: Path<String>) -> Response {
    tus_answer(head_upload(state, who, headers, id).await)
}

/// `PATCH`: appends the body at `Upload-Offset` → 204 with the new offset.
pub async fn patch(
    state: State<AppState>,
    who: Requester,
    headers: HeaderMap,
    id: Path<String>,
    body: Body,
) -> Response {
    tus_answer(patch_upload(state, who, headers, id, body).await)
}

/// `DELETE`: ends the upload and discards what it received.
pub async fn delete(state: State<AppState>, who: Requester, headers: HeaderMap, id: Path<String>) -> Response {
    tus_answer(delete_upload(state, who, headers, id).await)
}

/// Where the protocol is spoken: the creation URL and every upload's URL under it.
const TUS_PATH: &str = "/api/v1/storage/resumable";

/// Whether the answer to `request` must carry `Tus-Resumable`: the protocol asks it of every
/// answer but `OPTIONS`'s, so refusals made before a handler runs (401, 405, 413, 414, 429)
/// carry it too.
pub fn speaks_tus(request: &axum::extract::Request) -> bool {
    let path = request.uri().path();
    request.method() != axum::http::Method::OPTIONS
        && path.strip_prefix(TUS_PATH).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Adds `Tus-Resumable` to an answer of [`speaks_tus`].
pub fn mark_tus(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::HeaderName::from_static("tus-resumable"), HeaderValue::from_static(TUS_VERSION));
}

/// A 412 (a version not spoken here) names the versions that are, in `Tus-Version`. (Every
/// answer gets `Tus-Resumable` from [`mark_tus`].)
fn tus_answer(result: ApiResult<Response>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    if response.status() == StatusCode::PRECONDITION_FAILED {
        set(&mut response, "tus-version", TUS_VERSION);
    }
    response
}

async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    UniquePairs(pairs): UniquePairs,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_version(&headers)?;
    let uploader = Uploader::of(&state, caller, super::upload_token(&pairs, &[])?).await?;
    if headers.contains_key("upload-defer-length") {
        return Err(ApiError::bad_request("Upload-Defer-Length is not supported: send Upload-Length"));
    }
    let length = number(&headers, "upload-length")?;
    let raw = match headers.get("upload-metadata") {
        None => String::new(),
        // Base64 values are ASCII: anything else is refused rather than read as no metadata.
        Some(value) => value.to_str().map(|v| v.trim().to_owned()).map_err(|_| {
            ApiError::bad_request("Upload-Metadata must be ASCII: `key base64(value)` pairs, comma-separated")
        })?,
    };
    let (mut new, fields) = new_file(&raw)?;
    settle(&state, &uploader, &fields, &mut new).await?;
    let upload = state.files().create_resumable(&new, length, &raw).await?;
    // An empty file is complete at once.
    let mut response = if length == 0 {
        finish(&state, &upload, Body::empty(), 0).await?
    } else {
        let mut response = StatusCode::CREATED.into_response();
        upload_headers(&mut response, &upload);
        response
    };
    *response.status_mut() = StatusCode::CREATED;
    let mut location = format!("/api/v1/storage/resumable/{}", upload.id);
    if let Some(signed) = &uploader.grant {
        let expires = (upload.expires_at / 1000).min(signed.lasts_until.unwrap_or(i64::MAX));
        let grant = Grant::resume(&upload.bucket, &upload.id, expires);
        location = format!("{location}?token={}", state.files().signer.sign(&grant));
    }
    set(&mut response, "location", &location);
    Ok(response)
}

async fn head_upload(
    State(state): State<AppState>,
    who: Requester,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_lock, upload) = locked(&state, &who, &headers, &id).await?;
    let mut response = StatusCode::OK.into_response();
    upload_headers(&mut response, &upload);
    set(&mut response, "cache-control", "no-store");
    if !upload.metadata.is_empty() {
        set(&mut response, "upload-metadata", &upload.metadata);
    }
    if let Some(file) = &upload.file_id {
        set(&mut response, "ferrobase-file-id", file);
    }
    Ok(response)
}

async fn patch_upload(
    State(state): State<AppState>,
    who: Requester,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    check_version(&headers)?;
    let content_type = text(&headers, "content-type").unwrap_or_default();
    if !content_type.eq_ignore_ascii_case("application/offset+octet-stream") {
        return Err(ApiError::UnsupportedMediaType(
            "a PATCH carries Content-Type: application/offset+octet-stream".into(),
        ));
    }
    let offset = number(&headers, "upload-offset")?;
    let upload = owned(&state, &who, &id).await?;
    finish(&state, &upload, body, offset).await
}

/// Appends on a task of its own, so that a connection that breaks (and drops this request)
/// still records the bytes that arrived before the lock is let go.
async fn finish(state: &AppState, upload: &Resumable, body: Body, offset: u64) -> ApiResult<Response> {
    let (task_state, id) = (state.clone(), upload.id.clone());
    let appended = tokio::spawn(async move {
        let files = task_state.files();
        let _lock = files.lock_upload(&id).await;
        let upload = files.resumable(&id).await?.ok_or_else(|| upload_not_found(&id))?;
        let auto_create = task_state.settings().get_bool("auto_create_buckets");
        files.append(&upload, offset, &mut BodySource::new(body), auto_create).await.map(|appended| (upload, appended))
    })
    .await
    .map_err(|err| ApiError::Internal(format!("the append task failed: {err}")))?;
    let (upload, appended) = appended?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    upload_headers(&mut response, &upload);
    match appended {
        Appended::Partial(offset) => set(&mut response, "upload-offset", &offset.to_string()),
        Appended::Complete(file) => {
            set(&mut response, "upload-offset", &upload.length.to_string());
            set(&mut response, "ferrobase-file-id", &file.id);
            set(&mut response, "ferrobase-file-url", &file.url());
        }
    }
    Ok(response)
}

async fn delete_upload(
    State(state): State<AppState>,
    who: Requester,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (_lock, upload) = locked(&state, &who, &headers, &id).await?;
    state.files().terminate(&upload).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A tus request on one upload: the protocol version checked, the upload locked (so a broken
/// append records what it got first) and read, for its owner, the admin or its URL's token.
async fn locked(
    state: &AppState,
    who: &Requester,
    headers: &HeaderMap,
    id: &str,
) -> ApiResult<(tokio::sync::OwnedMutexGuard<()>, Resumable)> {
    check_version(headers)?;
    let lock = state.files().lock_upload(id).await;
    Ok((lock, owned(state, who, id).await?))
}

/// The upload, for its owner, the admin, or the holder of the token its `Location` carried.
async fn owned(state: &AppState, who: &Requester, id: &str) -> ApiResult<Resumable> {
    if let Some(token) = &who.token {
        let grant = state.files().signer.verify(token, Action::Resume, super::signed::now_secs())?;
        if grant.key.as_deref() != Some(id) {
            return Err(ApiError::Forbidden("this token was signed for another upload".into()));
        }
    }
    let upload = state.files().resumable(id).await?.ok_or_else(|| upload_not_found(id))?;
    if who.token.is_some() {
        super::signer_is_there(state, upload.owner_id.as_deref()).await?;
        return Ok(upload);
    }
    match &who.caller {
        Caller::Admin => Ok(upload),
        Caller::User(p) if upload.owner_id.as_deref() == Some(p.id.as_str()) => Ok(upload),
        Caller::User(_) => Err(ApiError::Forbidden("this upload is another user's".into())),
        Caller::Anonymous => Err(ApiError::Unauthorized("authentication required".into())),
    }
}

fn upload_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("upload '{}' not found (or expired)", crate::files::names::truncate(id, 64)))
}

/// The file's name and type from `Upload-Metadata` (`key base64(value)` pairs,
/// comma-separated), and where it asks the file to go.
fn new_file(raw: &str) -> ApiResult<(NewFile, Fields)> {
    if raw.len() > MAX_UPLOAD_METADATA_BYTES {
        return Err(ApiError::bad_request(format!(
            "Upload-Metadata is longer than {MAX_UPLOAD_METADATA_BYTES} bytes (MAX_UPLOAD_METADATA_BYTES)"
        )));
    }
    let mut new = NewFile { filename: "file".into(), ..NewFile::default() };
    let mut fields = Fields::default();
    let mut seen = std::collections::HashSet::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
        // tus 1.0: keys are unique (as a form's fields are).
        if !seen.insert(key) {
            return Err(ApiError::bad_request(format!("Upload-Metadata: '{key}' is given twice")));
        }
        let value =
            STANDARD.decode(encoded.trim()).ok().and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(|| {
                ApiError::bad_request(format!("Upload-Metadata: the value of '{key}' is not base64 of UTF-8"))
            })?;
        if value.contains('\0') {
            return Err(ApiError::bad_request(format!("Upload-Metadata: the value of '{key}' holds a NUL character")));
        }
        match key {
            "filename" | "name" => new.filename = clean_filename(&value),
            "filetype" | "type" | "contentType" => new.declared_type = metadata_type(&value),
            "bucket" => fields.bucket = Some(value),
            "key" => {
                check_key(&value)?;
                fields.key = Some(value);
            }
            "is_public" => fields.is_public = Some(super::flag("is_public", &value)?),
            "collection" => fields.collection = Some(value),
            "record_id" => fields.record_id = Some(value),
            // Clients add their own (tus-js-client: relativePath…); they are kept for HEAD only.
            _ => {}
        }
    }
    Ok((new, fields))
}

fn check_version(headers: &HeaderMap) -> ApiResult<()> {
    match text(headers, "tus-resumable") {
        Some(version) if version == TUS_VERSION => Ok(()),
        _ => Err(ApiError::PreconditionFailed(format!(
            "send Tus-Resumable: {TUS_VERSION} (the only version spoken here)"
        ))),
    }
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned())
}

/// A header of digits only (the protocol's; Rust's own parse would take a sign too).
fn number(headers: &HeaderMap, name: &str) -> ApiResult<u64> {
    text(headers, name)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_request(format!("{name} must be a whole number of bytes")))
}

fn upload_headers(response: &mut Response, upload: &Resumable) {
    set(response, "upload-offset", &upload.received.to_string());
    set(response, "upload-length", &upload.length.to_string());
    let expires = std::time::UNIX_EPOCH + std::time::Duration::from_millis(upload.expires_at.max(0) as u64);
    set(response, "upload-expires", &httpdate::fmt_http_date(expires));
}

fn set(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(header::HeaderName::from_static(name), value);
    }
}
