//! Signed URLs: `POST /storage/{bucket}/{key}/signed-url` (a download link to one object,
//! for whoever may read it) and `POST /storage/sign` (a link that lets a client without
//! credentials upload one file, once, into a bucket, under the limits signed into it).

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::data::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::files::names::{check_bucket_name, check_key, truncate};
use crate::files::signing::{Action, Grant};
use crate::files::upload::NewFile;
use crate::http::extract::JsonBody;
use crate::limits::MAX_SIGNED_URL_SECONDS;

/// A signed URL's life when the request names none.
const DEFAULT_EXPIRES_IN: i64 = 3600;

pub fn now_secs() -> i64 {
    crate::util::now_ms() / 1000
}

/// A signed URL's life in seconds: the one asked for (or the default) within
/// `MAX_SIGNED_URL_SECONDS`. A URL signed with an impersonation token ends with that token:
/// an admin acting as a user for minutes must not leave links that act for days.
fn expires_in(caller: &Caller, requested: Option<i64>) -> ApiResult<i64> {
    let seconds = match requested.unwrap_or(DEFAULT_EXPIRES_IN) {
        n if (1..=MAX_SIGNED_URL_SECONDS).contains(&n) => n,
        _ => {
            return Err(ApiError::bad_field(
                "expires_in",
                format!("expires_in must be from 1 to {MAX_SIGNED_URL_SECONDS} seconds (MAX_SIGNED_URL_SECONDS)"),
            ));
        }
    };
    Ok(match impersonation_ends(caller) {
        Some(ends) => seconds.min(ends - now_secs()).max(1),
        None => seconds,
    })
}

/// When the caller's impersonation token expires (Unix seconds); `None` for everyone else.
fn impersonation_ends(caller: &Caller) -> Option<i64> {
    match caller {
        Caller::User(user) if user.impersonated => user.session_ends_ms.map(|ms| ms / 1000),
        _ => None,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadRequest {
    #[serde(default, alias = "expiresIn")]
    expires_in: Option<i64>,
}

/// `{expires_in}` → `{signed_url, expires_in}`: a link to the object that works without
/// credentials until it expires, while its signer (a signed-in reader of the object, or the
/// admin) may still read it.
pub async fn sign_download(
    state: &AppState,
    caller: &Caller,
    bucket: &str,
    key: &str,
    request: Request,
) -> ApiResult<Response> {
    let wanted: DownloadRequest =
        super::optional_object(request.into_body(), "signing request").await.map_err(|err| {
            if err.code() != crate::error::codes::BODY {
                return err;
            }
            // Most likely an upload meant for a key ending in `/signed-url`, which no key may.
            ApiError::bad_input(
                crate::error::codes::BODY,
                format!(
                    "POST /storage/{{bucket}}/{{key}}/signed-url signs a download URL for the key before '/signed-url' \
                 and takes a JSON body {{\"expires_in\": seconds}}; no file is uploaded there, since a key may \
                 not end in '/signed-url' ({err})"
                ),
            )
        })?;
    let seconds = expires_in(caller, wanted.expires_in)?;
    let file = state
        .files()
        .file_at(bucket, key)
        .await?
        .ok_or_else(|| super::files::file_not_found(&format!("{}/{}", truncate(bucket, 64), truncate(key, 200))))?;
    state.files().may_read(state.store(), &file, caller).await?;
    let signer = match caller {
        Caller::User(user) => Some(user.id.as_str()),
        Caller::Admin => None,
        // Nobody would answer for the link: a public file needs none, until it is made private.
        Caller::Anonymous => return Err(ApiError::Unauthorized("sign in to sign a download URL".into())),
    };
    let grant = Grant::download(bucket, key, &file.id, signer, now_secs() + seconds);
    let url = format!("{}?token={}", file.object_path(), state.files().signer.sign(&grant));
    Ok(Json(json!({
        "signed_url": url,
        "signedURL": url,
        "expires_in": seconds,
        "expires_at": grant.expires,
    }))
    .into_response())
}

/// What a signed upload URL is for.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    #[serde(default)]
    bucket: Option<String>,
    /// The key the file must take (tables surface); `None` lets the upload name it.
    #[serde(default)]
    key: Option<String>,
    #[serde(default, alias = "content_type")]
    mime_type: Option<String>,
    #[serde(default, alias = "max_size")]
    max_size_bytes: Option<u64>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    is_public: Option<bool>,
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    record_id: Option<String>,
    /// The file at `key` may be replaced (`x-upsert: true`).
    #[serde(default)]
    upsert: Option<bool>,
}

/// `POST /storage/sign`: `{bucket?, key?, mime_type?, max_size_bytes?, expires_in?,
/// is_public?, collection?, record_id?, upsert?}` → `{url, resumable_url, method, expires_in,
/// expires_at}`. The uploaded file will be the signer's; attaching it to a record is checked
/// now.
pub async fn sign_upload(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Response> {
    let wanted: UploadRequest = crate::http::extract::from_object(body, "signing request")?;
    let owner = super::owner_of_upload(&caller)?;
    let seconds = expires_in(&caller, wanted.expires_in)?;
    let bucket = wanted.bucket.clone().unwrap_or_else(|| crate::files::buckets::DEFAULT_BUCKET.to_owned());
    check_bucket_name(&bucket)?;
    if state.files().bucket(&bucket).await?.is_none() && !state.settings().get_bool("auto_create_buckets") {
        return Err(crate::files::buckets::bucket_not_found(&bucket));
    }
    if let Some(key) = &wanted.key {
        check_key(key)?;
    }
    if let Some(pattern) = &wanted.mime_type
        && !crate::files::sniff::is_valid_pattern(pattern)
    {
        return Err(ApiError::bad_field("mime_type", "mime_type must be a content type such as image/png or image/*"));
    }
    if wanted.upsert == Some(true) && wanted.key.is_none() {
        return Err(ApiError::bad_field("upsert", "upsert needs the key of the file it may replace"));
    }
    if wanted.max_size_bytes == Some(0) {
        return Err(ApiError::bad_field("max_size_bytes", "max_size_bytes must be a positive number of bytes"));
    }
    let attach =
        NewFile { collection: wanted.collection.clone(), record_id: wanted.record_id.clone(), ..NewFile::default() };
    super::form::check_record(&state, &caller, &attach).await?;
    let grant = Grant {
        action: Action::Upload,
        bucket: bucket.clone(),
        key: wanted.key.clone(),
        expires: now_secs() + seconds,
        owner,
        nonce: Some(uuid::Uuid::new_v4().simple().to_string()),
        max_size: wanted.max_size_bytes,
        mime_type: wanted.mime_type,
        is_public: wanted.is_public,
        collection: wanted.collection,
        record_id: wanted.record_id,
        upsert: wanted.upsert.filter(|upsert| *upsert),
        file: None,
        lasts_until: impersonation_ends(&caller),
    };
    let token = state.files().signer.sign(&grant);
    let url = match &grant.key {
        Some(key) => format!("{}?token={token}", crate::files::meta::object_path(&bucket, key)),
        None => format!("/api/v1/storage/upload?token={token}"),
    };
    // The same token starts a resumable upload instead (once: either way it is spent).
    let resumable_url = format!("/api/v1/storage/resumable?token={token}");
    Ok(Json(json!({
        "url": url,
        "signed_url": url,
        "resumable_url": resumable_url,
        "method": "POST",
        "token": token,
        "bucket": bucket,
        "expires_in": seconds,
        "expires_at": grant.expires,
    }))
    .into_response())
}
