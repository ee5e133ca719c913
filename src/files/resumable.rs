//! Resumable uploads (the tus 1.0 protocol's state; `http/storage/resumable.rs` speaks it).
//! An upload is created with its length and metadata, then receives its bytes in any number
//! of appends. Each append streams into a chunk blob of its own and is recorded with the new
//! offset in one statement group; when a connection breaks, what arrived is kept, so the
//! client resumes from there. When the last byte arrives, the chunks are streamed in order
//! through the normal upload checks into one blob, the file's row is written and the chunks
//! go to the trash. Uploads not finished within [`UPLOAD_LIFETIME_MS`] are swept away.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::blobs::{BlobError, Blobs};
use super::meta::FileRecord;
use super::upload::{ByteSource, NewFile, blob_error};
use super::{Files, sniff};
use crate::data::{DbError, Value};
use crate::error::ApiError;
use crate::util::now_ms;

/// How long an unfinished upload is kept: 24 hours from its creation.
pub const UPLOAD_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// One resumable upload.
#[derive(Debug, Clone)]
pub struct Resumable {
    pub id: String,
    pub owner_id: Option<String>,
    pub bucket: String,
    pub key: Option<String>,
    pub filename: String,
    pub mime_type: Option<String>,
    pub is_public: Option<bool>,
    pub collection: Option<String>,
    pub record_id: Option<String>,
    pub length: u64,
    pub received: u64,
    /// The `Upload-Metadata` header it was created with, given back by `HEAD`.
    pub metadata: String,
    /// The file it became, once complete.
    pub file_id: Option<String>,
    pub expires_at: i64,
    /// The limits of the signed upload URL that started it, if one did.
    pub max_size: Option<u64>,
    pub mime_pattern: Option<String>,
}

const COLUMNS: &str = "id, owner_id, bucket, key, filename, mime_type, is_public, collection, record_id, length, \
    received, metadata, file_id, expires_at, max_size, mime_pattern";

impl Resumable {
    fn from_row(row: Vec<Value>) -> Resumable {
        let mut row = row.into_iter();
        let mut next = || row.next().unwrap_or(Value::Null);
        Resumable {
            id: next().text().unwrap_or_default(),
            owner_id: next().text(),
            bucket: next().text().unwrap_or_default(),
            key: next().text(),
            filename: next().text().unwrap_or_default(),
            mime_type: next().text(),
            is_public: match next() {
                Value::Null => None,
                other => Some(other.as_bool()),
            },
            collection: next().text(),
            record_id: next().text(),
            length: next().as_int().unwrap_or(0).max(0) as u64,
            received: next().as_int().unwrap_or(0).max(0) as u64,
            metadata: next().text().unwrap_or_default(),
            file_id: next().text(),
            expires_at: next().as_int().unwrap_or(0),
            max_size: next().as_int().map(|n| n.max(0) as u64),
            mime_pattern: next().text(),
        }
    }
}

/// Where an append left the upload.
pub enum Appended {
    /// More bytes are expected from this offset.
    Partial(u64),
    /// The upload is complete and became this file.
    Complete(Box<FileRecord>),
}

/// In-process locks, one per upload being appended to or asked about, so that a `HEAD` after
/// a broken connection sees the offset once the broken append has recorded what it got.
/// Instances sharing a database are kept apart by the offset check in the database instead.
#[derive(Default)]
pub struct UploadLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl UploadLocks {
    pub async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().expect("upload locks");
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry(id.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

impl Files {
    /// A new upload of `length` bytes, checked as far as it can be before its bytes: bucket,
    /// size, declared type and a key already taken. A signed URL's nonce is spent with the row: the URL starts one
    /// upload, however many requests that upload then takes.
    pub async fn create_resumable(&self, new: &NewFile, length: u64, metadata: &str) -> Result<Resumable, ApiError> {
        new.check(self.max_upload_bytes, &new.mime(), Some(length), None)?;
        let bucket = new.bucket.as_ref().map(|b| b.name.clone()).unwrap_or_default();
        // Refused now rather than once every byte has come (a resumable upload never replaces
        // a file); a file put at the key meanwhile is refused when the upload completes.
        if let Some(key) = &new.key
            && self.file_at(&bucket, key).await?.is_some()
        {
            return Err(ApiError::Conflict(format!("a file already exists at '{bucket}/{key}'")));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now_ms();
        let sql = format!(
            "INSERT INTO _fb_uploads ({COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let text = |v: &Option<String>| v.as_deref().map_or(Value::Null, Value::from);
        let params = vec![
            id.as_str().into(),
            text(&new.owner_id),
            bucket.into(),
            text(&new.key),
            new.filename.as_str().into(),
            text(&new.declared_type),
            new.is_public.map_or(Value::Null, Value::Bool),
            text(&new.collection),
            text(&new.record_id),
            Value::Int(length as i64),
            Value::Int(0),
            metadata.into(),
            Value::Null,
            (now + UPLOAD_LIFETIME_MS).into(),
            new.max_size.map_or(Value::Null, |n| Value::Int(n.min(i64::MAX as u64) as i64)),
            text(&new.mime_pattern),
            now.into(),
        ];
        // A bucket made for this upload is written with its file, when the upload completes:
        // one refused, abandoned or ended leaves none.
        let mut stmts = vec![self.db.stmt(&sql, params)];
        let nonce_at = stmts.len();
        stmts.extend(self.nonce_stmt(new));
        if let Err(err) = self.db.write_many(stmts).await {
            return Err(match err {
                DbError::InStatement { index, source }
                    if index == nonce_at && matches!(*source, DbError::UniqueViolation(_)) =>
                {
                    super::upload::used_signed_url()
                }
                other => other.into(),
            });
        }
        self.resumable(&id).await?.ok_or_else(|| ApiError::Internal("a new upload's row vanished".into()))
    }

    /// The upload, unless it has expired.
    pub async fn resumable(&self, id: &str) -> Result<Option<Resumable>, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM _fb_uploads WHERE id = ? AND expires_at >= ?");
        let rows = self.db.read(self.db.stmt(&sql, vec![id.into(), now_ms().into()])).await?;
        Ok(rows.rows.into_iter().next().map(Resumable::from_row))
    }

    pub async fn lock_upload(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.upload_locks.lock(id).await
    }

    /// Appends the bytes of `source` at `offset`, which must be what the upload holds. When the
    /// source breaks off, the bytes that arrived are kept (and the break is the error).
    pub async fn append<S: ByteSource>(
        &self,
        upload: &Resumable,
        offset: u64,
        source: &mut S,
        auto_create_bucket: bool,
    ) -> Result<Appended, ApiError> {
        if let Some(file) = &upload.file_id {
            return Err(ApiError::Conflict(format!("this upload is complete: it made the file '{file}'")));
        }
        if offset != upload.received {
            return Err(ApiError::Conflict(format!(
                "Upload-Offset {offset} does not match the upload's offset {}",
                upload.received
            )));
        }
        // A bucket deleted since the upload began would refuse the file at the end: the upload
        // ends now, before the client sends the rest of its bytes for nothing.
        if let Err(err) = self.bucket_for_upload(&upload.bucket, auto_create_bucket).await {
            if err.status().is_client_error() {
                self.terminate(upload).await?;
            }
            return Err(err);
        }
        let blob = uuid::Uuid::now_v7().to_string();
        let (size, broke) = self.write_chunk(&blob, upload.length - offset, source).await?;
        if size > 0 {
            self.record_chunk(upload, offset, size, &blob).await?;
        }
        if let Some(err) = broke {
            return Err(err);
        }
        if offset + size < upload.length {
            return Ok(Appended::Partial(offset + size));
        }
        match self.complete(upload, auto_create_bucket).await {
            Ok(file) => Ok(Appended::Complete(Box::new(file))),
            Err(err) => {
                // A file refused on the whole can never be accepted: the upload ends.
                if err.status().is_client_error() {
                    self.terminate(upload).await?;
                }
                Err(err)
            }
        }
    }

    /// Streams `source` into blob `blob`, at most `room` bytes; returns the size kept and the
    /// error the source broke off with, if it did.
    async fn write_chunk<S: ByteSource>(
        &self,
        blob: &str,
        room: u64,
        source: &mut S,
    ) -> Result<(u64, Option<ApiError>), ApiError> {
        let mut writer = self.blobs.writer(blob);
        let mut size = 0u64;
        let broke = loop {
            match source.next_chunk().await {
                Ok(Some(chunk)) => {
                    size += chunk.len() as u64;
                    if size > room {
                        writer.abort().await;
                        return Err(ApiError::PayloadTooLarge("the body goes past the upload's Upload-Length".into()));
                    }
                    if let Err(err) = writer.write(chunk).await {
                        writer.abort().await;
                        return Err(blob_error(err));
                    }
                }
                Ok(None) => break None,
                Err(err) => break Some(err),
            }
        };
        if size == 0 {
            writer.abort().await;
        } else {
            writer.finish().await.map_err(blob_error)?;
        }
        Ok((size, broke))
    }

    /// Records a chunk and the new offset, unless another append got there first.
    async fn record_chunk(&self, upload: &Resumable, offset: u64, size: u64, blob: &str) -> Result<(), ApiError> {
        let stmts = vec![
            self.db.stmt(
                "INSERT INTO _fb_upload_chunks (upload_id, start, size, blob) VALUES (?, ?, ?, ?)",
                vec![upload.id.as_str().into(), Value::Int(offset as i64), Value::Int(size as i64), blob.into()],
            ),
            self.db
                .stmt(
                    "UPDATE _fb_uploads SET received = ? WHERE id = ? AND received = ?",
                    vec![Value::Int((offset + size) as i64), upload.id.as_str().into(), Value::Int(offset as i64)],
                )
                .must_change(),
        ];
        if let Err(err) = self.db.write_many(stmts).await {
            if let Err(cleanup) = self.blobs.delete(blob).await {
                tracing::warn!(%cleanup, %blob, "deleting an unrecorded chunk failed");
            }
            return Err(match err {
                DbError::InStatement { .. } => {
                    ApiError::Conflict("another request appended to this upload first".into())
                }
                other => other.into(),
            });
        }
        Ok(())
    }

    /// The chunks, in order, through the normal checks into one file. Its bucket is read now;
    /// one still missing (made for this upload, or deleted since) is made with the file when
    /// `auto_create_bucket` says so, else 404.
    async fn complete(&self, upload: &Resumable, auto_create_bucket: bool) -> Result<FileRecord, ApiError> {
        let chunks = self
            .db
            .read(self.db.stmt(
                "SELECT blob FROM _fb_upload_chunks WHERE upload_id = ? ORDER BY start",
                vec![upload.id.as_str().into()],
            ))
            .await?;
        let blobs: VecDeque<String> = chunks.rows.into_iter().filter_map(|row| row[0].text()).collect();
        let new = NewFile {
            bucket: Some(self.bucket_for_upload(&upload.bucket, auto_create_bucket).await?),
            key: upload.key.clone(),
            filename: upload.filename.clone(),
            declared_type: upload.mime_type.clone(),
            is_public: upload.is_public,
            owner_id: upload.owner_id.clone(),
            collection: upload.collection.clone(),
            record_id: upload.record_id.clone(),
            max_size: upload.max_size,
            mime_pattern: upload.mime_pattern.clone(),
            completes_upload: Some(upload.id.clone()),
            ..NewFile::default()
        };
        let mut source = ChunkSource { blobs: self.blobs.clone(), pending: blobs, current: None };
        let received = self.receive(&new, true, &mut source).await?;
        self.attach(received, new).await
    }

    /// Ends an upload: its chunks go to the trash, its row goes.
    pub async fn terminate(&self, upload: &Resumable) -> Result<(), ApiError> {
        let id: Value = upload.id.as_str().into();
        let mut stmts = retire_chunks(self, &upload.id);
        stmts.push(self.db.stmt("DELETE FROM _fb_uploads WHERE id = ?", vec![id]));
        self.db.write_many(stmts).await?;
        self.sweep_soon();
        Ok(())
    }

    /// Moves expired uploads' chunks to the trash and forgets the uploads.
    pub(super) async fn expire_uploads(&self, now: i64) -> Result<(), ApiError> {
        let stmts = vec![
            self.db.stmt(
                "INSERT INTO _fb_blob_trash (blob, not_before) SELECT c.blob, 0 FROM _fb_upload_chunks c \
                 JOIN _fb_uploads u ON u.id = c.upload_id WHERE u.expires_at < ? ON CONFLICT (blob) DO NOTHING",
                vec![now.into()],
            ),
            self.db.stmt(
                "DELETE FROM _fb_upload_chunks WHERE upload_id IN (SELECT id FROM _fb_uploads WHERE expires_at < ?)",
                vec![now.into()],
            ),
            self.db.stmt("DELETE FROM _fb_uploads WHERE expires_at < ?", vec![now.into()]),
        ];
        self.db.write_many(stmts).await?;
        Ok(())
    }
}

/// The statements that, with a completed upload's file row, retire the upload: its chunks go
/// to the trash and it records the file it became.
pub(super) fn completion_stmts(files: &Files, upload_id: &str, file_id: &str) -> Vec<crate::data::Stmt> {
    let mut stmts = retire_chunks(files, upload_id);
    stmts
        .push(files.db.stmt("UPDATE _fb_uploads SET file_id = ? WHERE id = ?", vec![file_id.into(), upload_id.into()]));
    stmts
}

/// An upload's chunks into the trash, and their rows out.
fn retire_chunks(files: &Files, upload_id: &str) -> Vec<crate::data::Stmt> {
    vec![
        files.db.stmt(
            "INSERT INTO _fb_blob_trash (blob, not_before) SELECT blob, 0 FROM _fb_upload_chunks WHERE upload_id = ? \
             ON CONFLICT (blob) DO NOTHING",
            vec![upload_id.into()],
        ),
        files.db.stmt("DELETE FROM _fb_upload_chunks WHERE upload_id = ?", vec![upload_id.into()]),
    ]
}

/// The bytes of an upload's chunks, in order.
struct ChunkSource {
    blobs: Blobs,
    pending: VecDeque<String>,
    current: Option<BoxStream<'static, Result<Bytes, BlobError>>>,
}

impl ByteSource for ChunkSource {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            if let Some(stream) = &mut self.current {
                match stream.next().await {
                    Some(Ok(bytes)) => return Ok(Some(bytes)),
                    Some(Err(err)) => return Err(blob_error(err)),
                    None => self.current = None,
                }
            }
            let Some(blob) = self.pending.pop_front() else {
                return Ok(None);
            };
            self.current = Some(self.blobs.read(&blob, None).await.map_err(blob_error)?);
        }
    }
}

/// A type from the `Upload-Metadata` is declared like a part's `Content-Type`.
pub fn metadata_type(value: &str) -> Option<String> {
    let essence = sniff::essence(value);
    Some(value.trim().to_owned()).filter(|_| sniff::is_valid_pattern(essence) && !essence.contains('*'))
}
