//! The tables surface's objects: `GET /storage/{bucket}` (list by `prefix`, `limit`,
//! `offset`), `POST`/`GET`/`HEAD`/`DELETE /storage/{bucket}/{key}` (keys may hold `/`), and
//! `POST /storage/{bucket}/{key}/signed-url`. An upload is the raw request body (its
//! `Content-Type` declared) or a multipart form's file part; an existing key is replaced
//! only with `x-upsert: true` and only by its owner or the admin.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json_;

use super::download::{self, Serve};
use super::files::file_not_found;
use super::form::{Fields, read_text, signed_value};
use super::parts::Form;
use super::{BodySource, FieldSource, declared_length, signed};
use crate::app::AppState;
use crate::data::access::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::files::buckets::bucket_not_found;
use crate::files::meta::{FileRecord, Visible};
use crate::files::names::{SIGNED_URL_SEGMENT, check_key, clean_filename, is_file_id, truncate};
use crate::files::signing::{Action, Grant};
use crate::files::upload::{NewFile, Received};
use crate::http::extract::{Path, UniquePairs};

/// The largest page of a bucket listing, and the default.
const MAX_LIST: u32 = 1000;
const DEFAULT_LIST: u32 = 100;

/// `GET /storage/{bucket}`: the files the caller may see, in key order.
pub async fn list(state: &AppState, caller: &Caller, bucket: &str, pairs: &[(String, String)]) -> ApiResult<Response> {
    let (mut prefix, mut limit, mut offset) = (String::new(), DEFAULT_LIST, 0u64);
    for (key, value) in pairs {
        match key.as_str() {
            "prefix" => prefix = value.clone(),
            "limit" => {
                limit = value.parse().ok().filter(|n| (1..=MAX_LIST).contains(n)).ok_or_else(|| {
                    ApiError::bad_field("limit", format!("limit must be a whole number from 1 to {MAX_LIST}"))
                })?
            }
            "offset" => {
                // Up to the largest row offset the databases take: a page past the end is empty.
                offset = value.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::bad_field("offset", format!("offset must be a whole number from 0 to {}", i64::MAX))
                })? as u64
            }
            other => return Err(ApiError::bad_request(format!("unknown query parameter '{other}'"))),
        }
    }
    let visible = match caller {
        Caller::Admin => Visible::All,
        Caller::User(principal) => Visible::PublicOrOwnedBy(principal.id.clone()),
        Caller::Anonymous => Visible::Public,
    };
    let files = state.files().list_bucket(bucket, &prefix, &visible, limit, offset).await?;
    // A file listed proves its bucket exists; only an empty page needs asking.
    if files.is_empty() {
        state.files().existing_bucket(bucket).await?;
    }
    Ok(Json(files).into_response())
}

/// `GET`/`HEAD /storage/{bucket}/{key}`: public files to anyone, private ones to their
/// readers or with a signed URL (`?token=`).
pub async fn download(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    bucket: &str,
    key: &str,
    pairs: &[(String, String)],
    head: bool,
) -> ApiResult<Response> {
    let file = existing(state, bucket, key).await?;
    match super::token(pairs) {
        Some(token) => {
            let grant = state.files().signer.verify(token, Action::Download, signed::now_secs())?;
            if grant.bucket != bucket || grant.key.as_deref() != Some(key) {
                return Err(ApiError::Forbidden("this signed URL was signed for another object".into()));
            }
            if grant.file.as_deref() != Some(file.id.as_str()) {
                return Err(ApiError::Forbidden(
                    "this signed URL was signed for a file that has since been replaced or deleted".into(),
                ));
            }
            signer_may_read(state, grant.owner.as_deref(), &file).await?;
        }
        None => state.files().may_read(state.store(), &file, caller).await?,
    }
    download::serve(state, &file, headers, Serve::asked(head, pairs)).await
}

/// A signed download acts for its signer: it serves the file only while the signer may read
/// it, so that a link outlives neither the signer's account nor their access (a record's read
/// rule tightened, the file made private). The admin's links (`None`) always may.
async fn signer_may_read(state: &AppState, signer: Option<&str>, file: &FileRecord) -> ApiResult<()> {
    let Some(id) = signer else { return Ok(()) };
    let Some(user) = state.auth().user_by_id(id).await? else {
        return Err(ApiError::Forbidden("the account that signed this URL no longer exists".into()));
    };
    let principal = Principal { id: user.id, email: user.email, roles: user.roles, ..Principal::default() };
    state
        .files()
        .may_read(state.store(), file, &Caller::User(principal))
        .await
        .map_err(|_| ApiError::Forbidden("the account that signed this URL may no longer read this file".into()))
}

/// The file at `bucket`/`key`; 404 naming the bucket when that is what is missing.
async fn existing(state: &AppState, bucket: &str, key: &str) -> ApiResult<FileRecord> {
    // A file found proves its bucket exists; only a miss needs asking which is missing.
    if let Some(file) = state.files().file_at(bucket, key).await? {
        return Ok(file);
    }
    match state.files().bucket(bucket).await? {
        None => Err(bucket_not_found(bucket)),
        Some(_) => Err(file_not_found(&format!("{bucket}/{key}"))),
    }
}

/// `POST /storage/{bucket}/{key}` (an upload) or `POST /storage/{bucket}/{key}/signed-url`,
/// or a signed upload of a file id's path.
pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    Path((bucket, rest)): Path<(String, String)>,
    UniquePairs(pairs): UniquePairs,
    request: Request,
) -> ApiResult<Response> {
    if let Some(key) = rest.strip_suffix(SIGNED_URL_SEGMENT).and_then(|k| k.strip_suffix('/')) {
        return signed::sign_download(&state, &caller, &bucket, key, request).await;
    }
    upload(&state, caller, &bucket, &rest, &pairs, request).await
}

/// Whether an upload may replace the file at its key: `x-upsert: true` or `?upsert=true`.
/// Sent both ways (or on two header lines), they must agree (400 otherwise).
fn upsert_asked(headers: &HeaderMap, pairs: &[(String, String)]) -> ApiResult<bool> {
    let from_headers = headers.get_all("x-upsert").iter().map(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let from_query = pairs.iter().filter(|(k, _)| k == "upsert").map(|(_, v)| v.eq_ignore_ascii_case("true"));
    let mut asked = from_headers.chain(from_query);
    let first = asked.next().unwrap_or(false);
    match asked.all(|other| other == first) {
        true => Ok(first),
        false => Err(ApiError::bad_field("upsert", "x-upsert and ?upsert disagree: send one of them")),
    }
}

async fn upload(
    state: &AppState,
    caller: Caller,
    bucket: &str,
    key: &str,
    pairs: &[(String, String)],
    request: Request,
) -> ApiResult<Response> {
    check_key(key)?;
    let upsert = upsert_asked(request.headers(), pairs)?;
    let (owner, grant) = match super::upload_token(pairs, &["upsert"])? {
        Some(token) => {
            let grant = state.files().signer.verify(token, Action::Upload, signed::now_secs())?;
            if grant.bucket != bucket || grant.key.as_deref().is_some_and(|k| k != key) {
                return Err(ApiError::Forbidden("this signed URL was signed for another object".into()));
            }
            // A URL for a new file never replaces one unless its signer said so for this key.
            if upsert && grant.upsert != Some(true) {
                return Err(ApiError::Forbidden(
                    "this signed URL uploads a new file; it was not signed to replace one (upsert)".into(),
                ));
            }
            super::signer_is_there(state, grant.owner.as_deref()).await?;
            (grant.owner.clone(), Some(grant))
        }
        None => (super::owner_of_upload(&caller)?, None),
    };
    let auto_create = state.settings().get_bool("auto_create_buckets");
    let (bucket, existing) = state.files().upload_target(bucket, key, auto_create).await?;
    let acting = if grant.is_some() { owner_caller(&owner) } else { caller.clone() };
    // Checked now so that a refusal comes before the bytes; checked again as the row is written.
    match &existing {
        Some(_) if !upsert => {
            return Err(ApiError::Conflict(format!(
                "a file already exists at '{}/{key}' (send x-upsert: true to replace it)",
                bucket.name
            )));
        }
        Some(existing) => state.files().may_change(existing, &acting)?,
        None => {}
    }
    // The admin's new version of a user's file stays the user's (an admin's own file has no
    // owner, and the user would lose it).
    let owner = match (&existing, &acting) {
        (Some(existing), Caller::Admin) => existing.owner_id.clone(),
        _ => owner,
    };
    let mut new = NewFile {
        bucket: Some(bucket),
        key: Some(key.to_owned()),
        filename: clean_filename(key),
        owner_id: owner,
        replace_as: upsert.then_some(acting),
        ..NewFile::default()
    };
    if let Some(grant) = &grant {
        new.max_size = grant.max_size;
        new.mime_pattern = grant.mime_type.clone();
        new.is_public = grant.is_public;
        new.collection = grant.collection.clone();
        new.record_id = grant.record_id.clone();
        new.nonce = grant.spent_nonce();
    }
    // A new version keeps what the request does not say otherwise: the file's own visibility
    // (a private file in a public bucket stays private) and the record it belongs to.
    if let Some(existing) = &existing {
        new.is_public = new.is_public.or(existing.own_public);
        if new.collection.is_none() {
            new.collection = existing.collection.clone();
            new.record_id = existing.record_id.clone();
        }
    }
    let file = upload_body(state, new, grant.as_ref(), request).await?;
    let mut answer = file.to_json();
    answer["Key"] = Json_::String(format!("{}/{}", file.bucket, file.key));
    answer["Id"] = Json_::String(file.id.clone());
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// The caller that a signed upload acts as: its signer.
fn owner_caller(owner: &Option<String>) -> Caller {
    match owner {
        Some(id) => Caller::User(Principal { id: id.clone(), ..Default::default() }),
        None => Caller::Admin,
    }
}

/// Streams the body (raw, or a multipart form's file part) into the file store.
async fn upload_body(
    state: &AppState,
    mut new: NewFile,
    grant: Option<&Grant>,
    request: Request,
) -> ApiResult<FileRecord> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if content_type.as_deref().is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data")) {
        let mut form = Form::from_request(request, state).await?;
        let mut received = None;
        let read = read_form(state, &mut new, grant, &mut form, &mut received).await;
        return match (read, received) {
            (Ok(()), Some(received)) => state.files().attach(received, new).await,
            (Ok(()), None) => Err(ApiError::bad_field("file", "the form has no file part")),
            (Err(err), received) => {
                if let Some(received) = received {
                    state.files().discard(received).await;
                }
                Err(err)
            }
        };
    }
    new.declared_type = super::parts::declared_type(request.headers());
    new.declared_length = declared_length(request.headers());
    state.files().upload(new, &mut BodySource::new(request.into_body())).await
}

/// A form's one file part (received as it streams, under the bucket's limits) and the text
/// fields that settle it, before or after it: `is_public` (with a signed URL, only as signed)
/// and `bucket`, which may only repeat the path's. A record takes files through
/// `POST /storage/upload`, so `collection` and `record_id` are refused rather than ignored;
/// other text fields (supabase-js sends `cacheControl` and `metadata`) are read and not kept.
async fn read_form(
    state: &AppState,
    new: &mut NewFile,
    grant: Option<&Grant>,
    form: &mut Form,
    received: &mut Option<Received>,
) -> ApiResult<()> {
    let mut fields = Fields::default();
    while let Some(mut field) = form.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        if field.file_name().is_some() || name == "file" {
            if received.is_some() {
                return Err(ApiError::bad_field("file", "one file per upload"));
            }
            if let Some(filename) = field.file_name() {
                new.filename = clean_filename(filename);
            }
            new.declared_type = super::parts::declared_type(field.headers());
            *received = Some(state.files().receive(new, true, &mut FieldSource(field)).await?);
            continue;
        }
        match name.as_str() {
            "is_public" | "bucket" => {
                fields.set(&name, read_text(field).await?)?;
                settle_by_form(new, grant, &fields)?;
            }
            "collection" | "record_id" => {
                return Err(ApiError::bad_field(
                    &name,
                    "a file is given to a record by POST /storage/upload, or by a URL signed for the record",
                ));
            }
            _ => while field.chunk().await.map_err(super::parts::form_error)?.is_some() {},
        }
    }
    Ok(())
}

/// The form's `bucket`, which may only repeat the path's, and `is_public`, which a signed URL
/// takes only as signed.
fn settle_by_form(new: &mut NewFile, grant: Option<&Grant>, fields: &Fields) -> ApiResult<()> {
    let bucket = new.bucket.as_ref().map(|b| b.name.as_str()).unwrap_or_default();
    if let Some(sent) = fields.bucket.as_deref().filter(|sent| *sent != bucket) {
        return Err(ApiError::bad_field(
            "bucket",
            format!("the form names bucket '{}', the path '{bucket}'", truncate(sent, 64)),
        ));
    }
    if let Some(value) = fields.is_public {
        new.is_public = match grant {
            Some(grant) => signed_value("is_public", Some(&value), grant.is_public.as_ref())?,
            None => Some(value),
        };
    }
    Ok(())
}

/// `DELETE /storage/{bucket}/{key}`: the owner's or the admin's; 204, as the tables surface
/// answers every delete. `DELETE /storage/{id}/{filename}` deletes the file by id, as `GET`
/// serves it, with the collections surface's answer.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((bucket, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    if is_file_id(&bucket) {
        return super::files::delete_file(&state, &caller, &bucket).await;
    }
    let file = existing(&state, &bucket, &key).await?;
    state.files().may_change(&file, &caller)?;
    state.files().delete_file(&file).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
