//! The multipart form of `POST /storage/upload` (and of the admin's upload): `file`, plus
//! `bucket`, `is_public`, `collection` and `record_id`. The text fields may come before or
//! after the file: when the bucket is known before the file starts, its limits apply while
//! the bytes stream; either way every check is made again on the whole before the file gets
//! its row, and a refused file's blob is deleted.

use axum::extract::multipart::Field;

use super::FieldSource;
use super::parts::{Form, form_error};
use crate::app::AppState;
use crate::data::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::files::buckets::DEFAULT_BUCKET;
use crate::files::meta::FileRecord;
use crate::files::names::clean_filename;
use crate::files::signing::{Action, Grant};
use crate::files::upload::{NewFile, Received};

use crate::limits::MAX_FORM_FIELD_BYTES;

/// Who uploads: the caller, whose the file will be, and the signed URL it came with.
pub struct Uploader {
    pub caller: Caller,
    pub owner: Option<String>,
    pub grant: Option<Grant>,
}

impl Uploader {
    /// The uploader of a request: with a signed upload URL's `token`, whoever signed it (the
    /// caller needs no credentials); else the caller, who must be signed in.
    pub async fn of(state: &AppState, caller: Caller, token: Option<&str>) -> ApiResult<Uploader> {
        match token {
            Some(token) => {
                let grant = state.files().signer.verify(token, Action::Upload, super::signed::now_secs())?;
                super::signer_is_there(state, grant.owner.as_deref()).await?;
                Ok(Uploader { caller, owner: grant.owner.clone(), grant: Some(grant) })
            }
            None => Ok(Uploader { owner: super::owner_of_upload(&caller)?, caller, grant: None }),
        }
    }
}

/// Where the file goes and whom it belongs to, as the upload asks: the form's text fields (or
/// a resumable upload's metadata, which may name a key too).
#[derive(Debug, Default)]
pub struct Fields {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub is_public: Option<bool>,
    pub collection: Option<String>,
    pub record_id: Option<String>,
}

impl Fields {
    pub fn set(&mut self, name: &str, value: String) -> ApiResult<()> {
        let given = match name {
            "bucket" => self.bucket.is_some(),
            "collection" => self.collection.is_some(),
            "record_id" => self.record_id.is_some(),
            _ => self.is_public.is_some(),
        };
        if given {
            return Err(ApiError::bad_field(name, format!("form field '{name}' is given twice")));
        }
        if value.contains('\0') {
            return Err(ApiError::bad_field(name, format!("form field '{name}' holds a NUL character")));
        }
        let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        match name {
            "bucket" => self.bucket = value,
            "collection" => self.collection = value,
            "record_id" => self.record_id = value,
            _ => self.is_public = value.map(|v| super::flag("is_public", &v)).transpose()?,
        }
        Ok(())
    }
}

/// Reads the form and stores its file: 201's file, or the first refusal.
pub async fn receive_form(state: &AppState, uploader: &Uploader, mut form: Form) -> ApiResult<FileRecord> {
    let mut fields = Fields::default();
    let mut file: Option<(Received, NewFile)> = None;
    if let Err(err) = read_parts(state, uploader, &mut form, &mut fields, &mut file).await {
        if let Some((received, _)) = file {
            state.files().discard(received).await;
        }
        return Err(err);
    }
    let Some((received, mut new)) = file else {
        return Err(ApiError::bad_field("file", "the form has no 'file' part"));
    };
    match settle(state, uploader, &fields, &mut new).await {
        Ok(()) => state.files().attach(received, new).await,
        Err(err) => {
            state.files().discard(received).await;
            Err(err)
        }
    }
}

async fn read_parts(
    state: &AppState,
    uploader: &Uploader,
    form: &mut Form,
    fields: &mut Fields,
    file: &mut Option<(Received, NewFile)>,
) -> ApiResult<()> {
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(ApiError::bad_field("file", "one file per upload"));
                }
                let mut new = NewFile {
                    filename: clean_filename(field.file_name().unwrap_or("file")),
                    declared_type: super::parts::declared_type(field.headers()),
                    ..NewFile::default()
                };
                // The limits of the bucket apply while streaming when it is known by now.
                let bucket_known = fields.bucket.is_some() || uploader.grant.is_some();
                if bucket_known {
                    settle(state, uploader, fields, &mut new).await?;
                }
                let received = state.files().receive(&new, bucket_known, &mut FieldSource(field)).await?;
                *file = Some((received, new));
            }
            "bucket" | "is_public" | "collection" | "record_id" => fields.set(&name, read_text(field).await?)?,
            other => {
                return Err(ApiError::bad_field(
                    other,
                    format!(
                        "unknown form field '{}' (an upload takes file, bucket, is_public, collection and record_id)",
                        crate::files::names::truncate(other, 64)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Completes `new` from the form (or the signed URL): its bucket (created when missing and
/// `auto_create_buckets` is on), visibility, owner and record, checking that the uploader
/// may attach files to that record.
pub async fn settle(state: &AppState, uploader: &Uploader, fields: &Fields, new: &mut NewFile) -> ApiResult<()> {
    let grant = uploader.grant.as_ref();
    let bucket = match grant {
        Some(grant) => signed_value("bucket", fields.bucket.as_ref(), Some(&grant.bucket))?.unwrap_or_default(),
        None => fields.bucket.clone().unwrap_or_else(|| DEFAULT_BUCKET.to_owned()),
    };
    let auto_create = state.settings().get_bool("auto_create_buckets");
    new.bucket = Some(state.files().bucket_for_upload(&bucket, auto_create).await?);
    new.owner_id = uploader.owner.clone();
    match grant {
        Some(grant) => {
            new.collection = signed_value("collection", fields.collection.as_ref(), grant.collection.as_ref())?;
            new.record_id = signed_value("record_id", fields.record_id.as_ref(), grant.record_id.as_ref())?;
            // Unless signed, the file takes its bucket's visibility: the URL's holder may not
            // publish the signer's file.
            new.is_public = signed_value("is_public", fields.is_public.as_ref(), grant.is_public.as_ref())?;
            // A URL signed without a key lets the upload name one.
            new.key = match &grant.key {
                Some(_) => signed_value("key", fields.key.as_ref(), grant.key.as_ref())?,
                None => fields.key.clone(),
            };
            new.max_size = grant.max_size;
            new.mime_pattern = grant.mime_type.clone();
            new.nonce = grant.spent_nonce();
        }
        None => {
            new.collection = fields.collection.clone();
            new.record_id = fields.record_id.clone();
            new.is_public = fields.is_public;
            new.key = fields.key.clone();
            check_record(state, &uploader.caller, new).await?;
        }
    }
    Ok(())
}

/// A field of a signed upload: what was signed, which the form may repeat but not change.
pub fn signed_value<T: PartialEq + Clone>(field: &str, sent: Option<&T>, signed: Option<&T>) -> ApiResult<Option<T>> {
    match (sent, signed) {
        (Some(sent), Some(signed)) if sent != signed => {
            Err(ApiError::Forbidden(format!("this signed URL was signed with another {field}")))
        }
        (Some(_), None) => Err(ApiError::Forbidden(format!(
            "this signed URL was signed without {field}, which the upload may not set"
        ))),
        _ => Ok(signed.cloned()),
    }
}

/// A file that belongs to a record needs both names, and a caller who may update that
/// record (its collection's update rule).
pub async fn check_record(state: &AppState, caller: &Caller, new: &NewFile) -> ApiResult<()> {
    match (&new.collection, &new.record_id) {
        (None, None) => Ok(()),
        (Some(collection), Some(record)) => state.store().check_may_update(collection, record, caller).await,
        _ => Err(ApiError::bad_field("record_id", "collection and record_id go together")),
    }
}

pub async fn read_text(mut field: Field<'_>) -> ApiResult<String> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_FORM_FIELD_BYTES {
            return Err(ApiError::bad_field(
                &name,
                format!("form field '{name}' is longer than {MAX_FORM_FIELD_BYTES} bytes (MAX_FORM_FIELD_BYTES)"),
            ));
        }
    }
    String::from_utf8(bytes).map_err(|_| ApiError::bad_field(&name, format!("form field '{name}' is not UTF-8")))
}
