//! One upload, whichever endpoint it came through: limits and types checked before a byte
//! is stored, the content streamed into a new blob, then the metadata row written in one
//! statement group (replacing an older file at the same key, spending a signed URL's nonce).
//! A refusal or a failure at any step leaves no row and no blob.

use std::future::Future;

use bytes::Bytes;

use super::blobs::{BlobError, Unclaimed};
use super::buckets::Bucket;
use super::ingest::{Ingest, IngestError, Stored};
use super::meta::{FileRecord, delete_to_trash_stmts};
use super::{Files, sniff};
use crate::data::access::Caller;
use crate::data::{DbError, Dialect, Stmt, Value};
use crate::error::ApiError;
use crate::util::now_ms;

/// Where an upload's bytes come from (a multipart field, a request body), chunk by chunk.
/// An error means the client's stream broke off.
pub trait ByteSource: Send {
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, ApiError>> + Send;
}

/// Everything about a new file except its bytes.
#[derive(Debug, Clone, Default)]
pub struct NewFile {
    pub bucket: Option<Bucket>,
    /// The key; `None` gives `{id}/{filename}`.
    pub key: Option<String>,
    /// The original filename, already cleaned ([`super::names::clean_filename`]).
    pub filename: String,
    /// The Content-Type the client declared.
    pub declared_type: Option<String>,
    /// `None` takes the bucket's.
    pub is_public: Option<bool>,
    pub owner_id: Option<String>,
    pub collection: Option<String>,
    pub record_id: Option<String>,
    /// Who replaces the file at the key, if there is one when the row is written (`x-upsert`);
    /// the replaced file must be theirs to change ([`Files::may_change`]). `None` makes a file
    /// at the key a conflict.
    pub replace_as: Option<Caller>,
    /// The `Content-Length` the client announced, when it did.
    pub declared_length: Option<u64>,
    /// A signed upload's own limits, and its nonce with its expiry (ms).
    pub max_size: Option<u64>,
    pub mime_pattern: Option<String>,
    pub nonce: Option<(String, i64)>,
    /// The resumable upload this file completes (its chunks are retired with the row).
    pub completes_upload: Option<String>,
}

/// A file whose bytes are stored in a blob that no row names yet: [`Files::attach`] gives it
/// its row (after the final checks) or deletes it, and so does [`Files::discard`]. Dropped
/// otherwise (its request went away), its blob is deleted in the background.
#[must_use = "a received blob must be attached or discarded"]
pub struct Received {
    blob: Unclaimed,
    stored: Stored,
    mime: String,
    head: Vec<u8>,
}

impl NewFile {
    fn bucket(&self) -> Result<&Bucket, ApiError> {
        self.bucket.as_ref().ok_or_else(|| ApiError::Internal("an upload without a bucket".into()))
    }

    /// The most bytes this file may have: the bucket's, the signed URL's and the server's
    /// limits, whichever is least.
    fn limit(&self, server_max: u64) -> u64 {
        let bucket_max = self.bucket.as_ref().and_then(|b| b.max_size_bytes);
        [bucket_max, self.max_size, Some(server_max)].into_iter().flatten().min().unwrap_or(0)
    }

    pub(super) fn mime(&self) -> String {
        sniff::declared_type(self.declared_type.as_deref(), &self.filename)
    }

    /// Everything that can be checked without the bytes, and then the first bytes.
    pub(super) fn check(
        &self,
        server_max: u64,
        mime: &str,
        size: Option<u64>,
        head: Option<&[u8]>,
    ) -> Result<(), ApiError> {
        let limit = self.limit(server_max);
        if size.or(self.declared_length).is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let mime = sniff::essence(mime);
        check_type(self.bucket()?, self.mime_pattern.as_deref(), mime)?;
        match head {
            Some(head) => sniff::check_content(mime, head).map_err(ApiError::UnsupportedMediaType),
            None => Ok(()),
        }
    }
}

impl Files {
    /// Stores a file. 413 past the size limit, 415 for a type the bucket (or the signed URL)
    /// does not take or content that is not what it claims, 409 when the key is taken.
    pub async fn upload<S: ByteSource>(&self, new: NewFile, source: &mut S) -> Result<FileRecord, ApiError> {
        let received = self.receive(&new, true, source).await?;
        self.attach(received, new).await
    }

    /// Streams a file's bytes into a new blob. With `bucket_known`, `new`'s bucket and limits
    /// are final and checked before a byte is stored (and the size as it streams); without,
    /// only the server's and the signed URL's limits apply until [`Files::attach`].
    pub async fn receive<S: ByteSource>(
        &self,
        new: &NewFile,
        bucket_known: bool,
        source: &mut S,
    ) -> Result<Received, ApiError> {
        let mime = new.mime();
        let limit = if bucket_known {
            new.check(self.max_upload_bytes, &mime, None, None)?;
            new.limit(self.max_upload_bytes)
        } else {
            new.max_size.unwrap_or(u64::MAX).min(self.max_upload_bytes)
        };
        let mut start = Start::default();
        start.read(source, sniff::HEAD_BYTES, limit).await?;
        let joined = start.sniffed();
        if bucket_known {
            new.check(self.max_upload_bytes, &mime, None, Some(&joined))?;
        }
        // A file that fits in one part of the blob store is read whole and written at once.
        start.read(source, self.blobs.part_size(), limit).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let (stored, blob) = self.store_blob(&id, limit, start, source).await?;
        Ok(Received { blob, stored, mime, head: joined })
    }

    /// Gives a received blob its row, after checking it against `new`'s bucket and limits;
    /// on any refusal the blob is deleted. The checks run against the bucket as it is when the
    /// row is written: a bucket changed or re-created while the file streamed in is read again
    /// and the file checked against it, and a file another upload put at the key meanwhile is
    /// replaced only when `new` may replace it.
    pub async fn attach(&self, mut received: Received, mut new: NewFile) -> Result<FileRecord, ApiError> {
        for _ in 0..COMMIT_ATTEMPTS {
            let size = Some(received.stored.size);
            if let Err(err) = new.check(self.max_upload_bytes, &received.mime, size, Some(&received.head)) {
                return self.refuse(received, err).await;
            }
            received = match self.commit(&new, received).await {
                Ok(file) => return Ok(file),
                Err(Uncommitted::Refused(err, received)) => return self.refuse(received, err).await,
                Err(Uncommitted::Lost(err)) => return Err(err),
                Err(Uncommitted::Raced(race, received)) => match self.catch_up(&mut new, race).await {
                    Ok(()) => received,
                    Err(err) => return self.refuse(received, err).await,
                },
            };
        }
        let err = ApiError::Conflict("the bucket or the file at this key kept changing; try again".into());
        self.refuse(received, err).await
    }

    /// Deletes a received blob that will not be attached.
    pub async fn discard(&self, received: Received) {
        received.blob.delete().await;
    }

    async fn refuse(&self, received: Received, err: ApiError) -> Result<FileRecord, ApiError> {
        self.discard(received).await;
        Err(err)
    }

    /// Brings `new` up to date after a commit lost a race: the bucket as it is now, or the
    /// file now at the key (which the uploader must be allowed to replace).
    async fn catch_up(&self, new: &mut NewFile, race: Race) -> Result<(), ApiError> {
        let bucket = new.bucket()?.name.clone();
        match race {
            Race::Bucket => new.bucket = Some(self.existing_bucket(&bucket).await?),
            // The file now at the key was not the uploader's to replace, or it went again.
            Race::Key => {
                let key = new.key.as_deref().unwrap_or_default();
                if let (Some(file), Some(acting)) = (self.file_at(&bucket, key).await?, &new.replace_as) {
                    self.may_change(&file, acting)?;
                }
            }
        }
        Ok(())
    }

    async fn store_blob<S: ByteSource>(
        &self,
        id: &str,
        limit: u64,
        start: Start,
        source: &mut S,
    ) -> Result<(Stored, Unclaimed), ApiError> {
        if start.ended {
            // The whole file is in hand: one write, without a writer task.
            let blob = self.blobs.put_unclaimed(id, start.chunks).await.map_err(blob_error)?;
            return Ok((Stored { size: start.len as u64 }, blob));
        }
        let mut ingest = Ingest::start(&self.blobs, id, limit);
        for chunk in start.chunks {
            ingest.push(chunk).await.map_err(ingest_error)?;
        }
        while let Some(chunk) = source.next_chunk().await? {
            ingest.push(chunk).await.map_err(ingest_error)?;
        }
        ingest.finish().await.map_err(ingest_error)
    }

    /// The metadata row, in one statement group with the replaced file's removal and the
    /// nonce's spending; the file as that row shows it. The group runs to its end on a task of
    /// its own, so that a request dropped meanwhile leaves the row with its blob, or neither.
    async fn commit(&self, new: &NewFile, mut received: Received) -> Result<FileRecord, Uncommitted> {
        let bucket = match new.bucket() {
            Ok(bucket) => bucket,
            Err(err) => return Err(Uncommitted::Refused(err, received)),
        };
        let key = new
            .key
            .clone()
            .unwrap_or_else(|| format!("{}/{}", received.blob.id(), super::names::key_segment(&new.filename)));
        let now = now_ms();
        let mut stmts: Vec<Stmt> = self.unsaved_bucket_stmt(bucket).into_iter().collect();
        if let Some(acting) = &new.replace_as {
            stmts.extend(self.replace_stmts(&bucket.name, &key, acting));
        }
        let insert_at = stmts.len();
        stmts.push(self.insert_stmt(new, &received, bucket, &key, now));
        stmts.extend(self.nonce_stmt(new));
        if let Some(upload) = &new.completes_upload {
            stmts.extend(super::resumable::completion_stmts(self, upload, received.blob.id()));
        }
        let db = self.db.clone();
        let written_row = tokio::spawn(async move {
            let result = db.write_many(stmts).await;
            if result.is_ok() {
                received.blob.claim();
            }
            (result, received)
        });
        let (result, received) = match written_row.await {
            Ok(done) => done,
            // The task panicked: its guard deleted the blob, and nothing was committed.
            Err(err) => return Err(Uncommitted::Lost(ApiError::Internal(format!("writing a file's row: {err}")))),
        };
        if new.replace_as.is_some() || new.completes_upload.is_some() {
            self.sweep_soon();
        }
        let err = match result {
            Ok(_) => return Ok(written(new, bucket, &received, key, now)),
            Err(err) => err,
        };
        // The row's own statement found no record to belong to (or no collection to look in).
        if matches!(&err, DbError::InStatement { index, .. } if *index == insert_at) && !self.record_is_there(new).await
        {
            let (collection, record) = (new.collection.as_deref(), new.record_id.as_deref());
            let err = ApiError::not_found(format!(
                "record '{}' of collection '{}' is not there (any more): its file is not kept",
                record.unwrap_or_default(),
                collection.unwrap_or_default()
            ));
            return Err(Uncommitted::Refused(err, received));
        }
        Err(match err {
            // The bucket was deleted, changed or re-created while the file streamed in.
            DbError::InStatement { index, source }
                if index == insert_at && matches!(*source, DbError::NoRowChanged(_)) =>
            {
                Uncommitted::Raced(Race::Bucket, received)
            }
            DbError::InStatement { index, source } if matches!(*source, DbError::UniqueViolation(_)) => {
                if index != insert_at {
                    Uncommitted::Refused(used_signed_url(), received)
                } else if new.replace_as.is_some() {
                    Uncommitted::Raced(Race::Key, received)
                } else {
                    let err = ApiError::Conflict(format!("a file already exists at '{}/{key}'", bucket.name));
                    Uncommitted::Refused(err, received)
                }
            }
            err => Uncommitted::Refused(err.into(), received),
        })
    }

    /// The spending of a signed upload URL's nonce, which fails (a unique violation) when it
    /// was spent before.
    pub(super) fn nonce_stmt(&self, new: &NewFile) -> Option<Stmt> {
        let (nonce, expires_at) = new.nonce.as_ref()?;
        Some(self.db.stmt(
            "INSERT INTO _fb_signed_uses (nonce, expires_at) VALUES (?, ?)",
            vec![nonce.as_str().into(), (*expires_at).into()],
        ))
    }

    /// The removal of the file at `bucket`/`key` (its blob to the trash) when `acting` may
    /// change it: the admin, or its owner, as [`Files::may_change`] decides. A file at the key
    /// that is not theirs stays, and the new row then conflicts with it. On PostgreSQL the
    /// replacements of one key take turns (a transaction-scoped advisory lock on the key), so
    /// that each sees the file the one before it wrote instead of losing to it.
    fn replace_stmts(&self, bucket: &str, key: &str, acting: &Caller) -> Vec<Stmt> {
        let mut condition = "bucket = ? AND key = ?".to_owned();
        let mut params: Vec<Value> = vec![bucket.into(), key.into()];
        match acting {
            Caller::Admin => {}
            Caller::User(principal) => {
                condition.push_str(" AND owner_id = ?");
                params.push(principal.id.as_str().into());
            }
            Caller::Anonymous => return Vec::new(),
        }
        let mut stmts = Vec::new();
        if self.db.dialect() == Dialect::Postgres {
            // pg_advisory_xact_lock answers void, which no driver decodes: the statement counts.
            let lock = "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(hashtextextended(?, 0))) AS locked";
            stmts.push(self.db.stmt(lock, vec![super::meta::object_path(bucket, key).into()]));
        }
        stmts.extend(delete_to_trash_stmts(self, &condition, params));
        stmts
    }

    /// The file's row, inserted only while its bucket exists with the rules it was checked
    /// against (a bucket changed or re-created meanwhile fails the insert). On PostgreSQL
    /// the bucket's row is share-locked until the insert commits, so a bucket being deleted
    /// (which locks it first) either waits for the file and deletes it too, or is already gone
    /// and the insert adds nothing; SQLite's single writer runs the two one after the other.
    fn insert_stmt(&self, new: &NewFile, received: &Received, bucket: &Bucket, key: &str, now: i64) -> Stmt {
        let (same_max, lock) = match self.db.dialect() {
            Dialect::Postgres => ("IS NOT DISTINCT FROM", " FOR KEY SHARE"),
            Dialect::Sqlite => ("IS", ""),
        };
        let mut sql = format!(
            "INSERT INTO _fb_files (id, bucket, key, filename, mime_type, size, etag, is_public, owner_id, \
             collection, record_id, blob, created_at, updated_at) \
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM _fb_buckets \
             WHERE name = ? AND is_public = ? AND allowed_mime_types = ? AND max_size_bytes {same_max} ?"
        );
        // A file of a record is written only while the record is there (the record's row is
        // locked against a delete until the file's row commits, which that delete then removes).
        let record = new.collection.as_deref().zip(new.record_id.as_deref());
        if let Some((collection, _)) = record {
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM {} WHERE _id = ? AND _deleted_at IS NULL{lock})",
                crate::data::sql::quote_ident(collection)
            ));
        }
        sql.push_str(lock);
        let id = received.blob.id();
        let mut params = vec![
            id.into(),
            bucket.name.as_str().into(),
            key.into(),
            new.filename.as_str().into(),
            received.mime.as_str().into(),
            Value::Int(received.stored.size as i64),
            id.into(),
            new.is_public.map_or(Value::Null, Value::Bool),
            opt(&new.owner_id),
            opt(&new.collection),
            opt(&new.record_id),
            id.into(),
            now.into(),
            now.into(),
            bucket.name.as_str().into(),
            bucket.is_public.into(),
            Value::Json(serde_json::json!(bucket.allowed_mime_types)),
            bucket.max_size_bytes.map_or(Value::Null, |n| Value::Int(n as i64)),
        ];
        params.extend(record.map(|(_, id)| Value::from(id)));
        self.db.stmt(&sql, params).must_change()
    }

    /// Whether a file may still be given to its record: the record is there, not deleted.
    async fn record_is_there(&self, new: &NewFile) -> bool {
        let Some((collection, id)) = new.collection.as_deref().zip(new.record_id.as_deref()) else {
            return true;
        };
        let sql = format!(
            "SELECT 1 FROM {} WHERE _id = ? AND _deleted_at IS NULL",
            crate::data::sql::quote_ident(collection)
        );
        // A collection dropped meanwhile fails the read: the record is gone with it.
        self.db.read(self.db.stmt(&sql, vec![id.into()])).await.is_ok_and(|rows| !rows.rows.is_empty())
    }
}

/// The most times an upload's row is tried, each after catching up with a race it lost.
const COMMIT_ATTEMPTS: usize = 4;

/// Why a file's row was not written.
enum Uncommitted {
    /// Refused for good: the blob goes.
    Refused(ApiError, Received),
    /// Lost a race with a change of the bucket or of the file at the key: try again.
    Raced(Race, Received),
    /// The write itself was lost (its task failed), and the blob with it.
    Lost(ApiError),
}

enum Race {
    Bucket,
    Key,
}

/// The file a committed row holds, as [`Files::file`] would read it back.
fn written(new: &NewFile, bucket: &Bucket, received: &Received, key: String, now: i64) -> FileRecord {
    let id = received.blob.id().to_owned();
    FileRecord {
        id: id.clone(),
        bucket: bucket.name.clone(),
        key,
        filename: new.filename.clone(),
        mime_type: received.mime.clone(),
        size: received.stored.size,
        version_tag: id.clone(),
        is_public: new.is_public.unwrap_or(bucket.is_public),
        own_public: new.is_public,
        owner_id: new.owner_id.clone(),
        collection: new.collection.clone(),
        record_id: new.record_id.clone(),
        blob: id,
        created_at: now,
        updated_at: now,
    }
}

fn opt(value: &Option<String>) -> Value {
    value.as_deref().map_or(Value::Null, Value::from)
}

/// The first chunks of an upload, read before its blob is begun.
#[derive(Default)]
struct Start {
    chunks: Vec<Bytes>,
    len: usize,
    /// The source ended within them: they are the whole file.
    ended: bool,
}

impl Start {
    /// Reads on until more than `want` bytes are in hand or the source ends; 413 past `limit`.
    async fn read<S: ByteSource>(&mut self, source: &mut S, want: usize, limit: u64) -> Result<(), ApiError> {
        while !self.ended && self.len <= want {
            match source.next_chunk().await? {
                Some(chunk) => {
                    self.len += chunk.len();
                    if self.len as u64 > limit {
                        return Err(too_large(limit));
                    }
                    self.chunks.push(chunk);
                }
                None => self.ended = true,
            }
        }
        Ok(())
    }

    /// The bytes the sniffer reads.
    fn sniffed(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|chunk| chunk.iter().copied()).take(sniff::HEAD_BYTES).collect()
    }
}

/// 415 unless the bucket's and the signed URL's patterns admit `mime`.
fn check_type(bucket: &Bucket, signed_pattern: Option<&str>, mime: &str) -> Result<(), ApiError> {
    if !sniff::allowed(&bucket.allowed_mime_types, mime) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "bucket '{}' does not accept {mime} (allowed: {})",
            bucket.name,
            bucket.allowed_mime_types.join(", ")
        )));
    }
    if let Some(pattern) = signed_pattern
        && !sniff::allowed(&[pattern.to_owned()], mime)
    {
        return Err(ApiError::UnsupportedMediaType(format!("this signed URL only accepts {pattern}, not {mime}")));
    }
    Ok(())
}

/// The refusal of a signed upload URL whose single use is spent.
pub(super) fn used_signed_url() -> ApiError {
    ApiError::Forbidden("this signed upload URL has already been used".into())
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!("the file is larger than the limit of {limit} bytes"))
}

fn ingest_error(err: IngestError) -> ApiError {
    match err {
        IngestError::TooLarge { limit } => too_large(limit),
        IngestError::Blob(err) => blob_error(err),
    }
}

/// A blob store failure as an answer: 503, since the store (a disk, an S3 service) failed, not
/// the request; the detail goes to the log only.
pub fn blob_error(err: BlobError) -> ApiError {
    tracing::error!(%err, "the file store failed");
    ApiError::Unavailable("the file store is unavailable; try again later".into())
}
