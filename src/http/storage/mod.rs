//! `/api/v1/storage`: both surfaces' file endpoints over one file store
//! ([`crate::files`]). The collections surface names files by id (`/storage/{id}`), the
//! tables surface by bucket and key (`/storage/{bucket}/{key}`); a file id is a UUID and a
//! bucket name never is, which is how `/storage/{x}` tells them apart.

pub(crate) mod buckets;
pub(crate) mod download;
pub(crate) mod files;
pub(crate) mod form;
pub(crate) mod objects;
pub(crate) mod parts;
pub(crate) mod resumable;
pub(crate) mod signed;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::multipart::Field;
use axum::http::HeaderMap;
use futures_util::StreamExt;

use crate::data::access::Caller;
use crate::error::{ApiError, ApiResult, codes};
use crate::files::names::truncate;
use crate::files::upload::ByteSource;
use crate::limits::MAX_OPTIONS_BODY_BYTES;

/// The bytes of one multipart field.
pub struct FieldSource<'a>(pub Field<'a>);

impl ByteSource for FieldSource<'_> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        self.0.chunk().await.map_err(|err| {
            if crate::http::serve::body_stalled(&err) {
                return crate::http::serve::stalled_body_error();
            }
            cut_off(&err.body_text())
        })
    }
}

/// The bytes of a whole request body.
pub struct BodySource(pub BodyDataStream);

impl BodySource {
    pub fn new(body: Body) -> BodySource {
        BodySource(body.into_data_stream())
    }
}

impl ByteSource for BodySource {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        match self.0.next().await {
            None => Ok(None),
            Some(Ok(bytes)) => Ok(Some(bytes)),
            Some(Err(err)) if crate::http::serve::body_stalled(&err) => Err(crate::http::serve::stalled_body_error()),
            Some(Err(err)) => Err(cut_off(&err.to_string())),
        }
    }
}

fn cut_off(why: &str) -> ApiError {
    ApiError::bad_request(format!("the upload was cut off: {why}"))
}

/// The `Content-Length` a request announced.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(axum::http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// `true`/`1`/`yes` or `false`/`0`/`no` (any case); anything else is a 400 naming `field`.
pub fn flag(field: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(ApiError::bad_field(field, format!("{field} must be true or false"))),
    }
}

/// Whose a new file is: the signed-in user's; nobody's for the admin; anonymous callers need
/// a signed URL instead.
pub fn owner_of_upload(caller: &Caller) -> Result<Option<String>, ApiError> {
    match caller {
        Caller::User(principal) => Ok(Some(principal.id.clone())),
        Caller::Admin => Ok(None),
        Caller::Anonymous => Err(ApiError::Unauthorized("authentication required (or a signed upload URL)".into())),
    }
}

/// An optional JSON object of settings: an empty body gives the defaults. 413 past
/// [`MAX_OPTIONS_BODY_BYTES`].
pub async fn optional_object<T: serde::de::DeserializeOwned + Default>(body: Body, what: &str) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_OPTIONS_BODY_BYTES).await.map_err(|err| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(err) = cause {
            if err.is::<http_body_util::LengthLimitError>() {
                return ApiError::PayloadTooLarge(format!(
                    "the request body is larger than {MAX_OPTIONS_BODY_BYTES} bytes (MAX_OPTIONS_BODY_BYTES)"
                ));
            }
            cause = err.source();
        }
        if crate::http::serve::body_stalled(&err) {
            return crate::http::serve::stalled_body_error();
        }
        ApiError::bad_input(codes::BODY, format!("cannot read the request body: {err}"))
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let body = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_input(codes::BODY, format!("invalid JSON body: {e}")))?;
    crate::http::extract::from_object(body, what)
}

/// A signed URL acts for its signer, whose account must still be there: a deleted user's
/// URLs upload nothing more (the admin's, whose files have no owner, always may).
pub async fn signer_is_there(state: &crate::app::AppState, owner: Option<&str>) -> Result<(), ApiError> {
    match owner {
        Some(id) if state.auth().user_by_id(id).await?.is_none() => {
            Err(ApiError::Forbidden("the account that signed this URL no longer exists".into()))
        }
        _ => Ok(()),
    }
}

/// The `token` query parameter of a signed URL, if any.
pub fn token(pairs: &[(String, String)]) -> Option<&str> {
    pairs.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str())
}

/// The `token` of an upload's query, which may hold nothing else but `also`: a setting sent
/// as a query parameter (`?is_public=true`) is refused, not silently ignored.
pub fn upload_token<'a>(pairs: &'a [(String, String)], also: &[&str]) -> ApiResult<Option<&'a str>> {
    if let Some((unknown, _)) = pairs.iter().find(|(k, _)| k != "token" && !also.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter '{}': an upload's settings go in its form fields or headers",
            truncate(unknown, 64)
        )));
    }
    Ok(token(pairs))
}
