//! File storage, shared by both API surfaces: buckets ([`buckets`]), file metadata
//! ([`meta`]), the blob store (local disk or S3, [`blobs`]), streaming uploads ([`upload`],
//! [`ingest`]), content types ([`sniff`]), names and keys ([`names`]) and signed URLs
//! ([`signing`]). A file uploaded through `/storage/upload` is the same row and blob that
//! `/storage/{bucket}/{key}` serves.
//!
//! Blobs that are no longer referenced (a file deleted or replaced, a bucket or record
//! deleted) are first recorded in `_fb_blob_trash` in the same transaction that drops their
//! row, then deleted by the sweeper; so a crash between the two leaks nothing.

pub mod blobs;
pub mod buckets;
mod ingest;
pub mod meta;
pub mod names;
pub mod resumable;
pub mod signing;
pub mod sniff;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::data::access::Caller;
use crate::data::read::Deleted;
use crate::data::{Db, Store};
use crate::error::ApiError;
use crate::util::now_ms;
use blobs::Blobs;
use meta::FileRecord;
use signing::Signer;

/// How often the sweeper looks at the trash when nothing pokes it.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Blobs deleted per sweeper pass.
const SWEEP_BATCH: i64 = 200;
/// How often the whole blob store is compared with the rows that name blobs, for blobs that a
/// crash left without one (the first time a minute after start-up).
const ORPHAN_SWEEP_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// How old a blob must be before it counts as an orphan: an upload's blob is written a moment
/// before its row, and a staging file lives as long as its upload streams.
const ORPHAN_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Blob ids looked up per query when looking for orphans.
const ORPHAN_PAGE: usize = 100;

pub struct Files {
    db: Db,
    pub blobs: Blobs,
    pub signer: Signer,
    /// The largest upload to a bucket without its own limit.
    pub max_upload_bytes: u64,
    sweep: Arc<Notify>,
    upload_locks: resumable::UploadLocks,
}

impl Files {
    pub fn new(db: Db, blobs: Blobs, signer: Signer, max_upload_bytes: u64) -> Files {
        Files { db, blobs, signer, max_upload_bytes, sweep: Arc::new(Notify::new()), upload_locks: Default::default() }
    }

    /// Asks the sweeper to run now.
    pub fn sweep_soon(&self) {
        self.sweep.notify_one();
    }

    /// Deletes the blobs in the trash that are due (expired resumable uploads' chunks
    /// included), and spent nonces that have expired.
    /// Returns how many blobs went.
    pub async fn sweep(&self) -> Result<usize, ApiError> {
        let now = now_ms();
        self.expire_uploads(now).await?;
        let due = self
            .db
            .read(self.db.stmt(
                "SELECT blob FROM _fb_blob_trash WHERE not_before <= ? ORDER BY not_before LIMIT ?",
                vec![now.into(), SWEEP_BATCH.into()],
            ))
            .await?;
        let mut deleted = 0;
        for row in due.rows {
            let Some(blob) = row[0].as_text() else { continue };
            match self.blobs.delete(blob).await {
                Ok(()) => {
                    self.db.write(self.db.stmt("DELETE FROM _fb_blob_trash WHERE blob = ?", vec![blob.into()])).await?;
                    deleted += 1;
                }
                Err(err) => tracing::warn!(%err, %blob, "deleting a trashed blob failed; retried later"),
            }
        }
        self.db.write(self.db.stmt("DELETE FROM _fb_signed_uses WHERE expires_at < ?", vec![now.into()])).await?;
        Ok(deleted)
    }

    /// Deletes the blobs, written more than `grace` ago, that no row names: no file, no chunk
    /// of a resumable upload, nothing in the trash. Only a crash leaves such a blob: between a
    /// blob's last byte and its row, or half way through a local upload (its staging file).
    /// Returns how many blobs and staging files went.
    pub async fn sweep_orphans(&self, grace: Duration) -> Result<usize, ApiError> {
        use futures_util::StreamExt;
        let before = now_ms() - grace.as_millis() as i64;
        let mut deleted = self.blobs.remove_stale_staging(before).await.map_err(upload::blob_error)?;
        let mut pages = self.blobs.written_before(before).chunks(ORPHAN_PAGE);
        while let Some(page) = pages.next().await {
            let page = page.into_iter().collect::<Result<Vec<_>, _>>().map_err(upload::blob_error)?;
            let named = self.named_blobs(&page).await?;
            for blob in page.iter().filter(|blob| !named.contains(blob.as_str())) {
                match self.blobs.delete(blob).await {
                    Ok(()) => deleted += 1,
                    Err(err) => tracing::warn!(%err, %blob, "deleting an orphaned blob failed"),
                }
            }
        }
        Ok(deleted)
    }

    /// Which of `blobs` some row names.
    async fn named_blobs(&self, blobs: &[String]) -> Result<std::collections::HashSet<String>, ApiError> {
        // A fixed number of parameters (the rest never match), so the statement is prepared once.
        let marks = vec!["?"; ORPHAN_PAGE].join(", ");
        let sql = format!(
            "SELECT blob FROM _fb_files WHERE blob IN ({marks}) UNION SELECT blob FROM _fb_upload_chunks \
             WHERE blob IN ({marks}) UNION SELECT blob FROM _fb_blob_trash WHERE blob IN ({marks})"
        );
        let mut page: Vec<crate::data::Value> = blobs.iter().map(|b| b.as_str().into()).collect();
        page.resize(ORPHAN_PAGE, "".into());
        let params = [page.clone(), page.clone(), page].concat();
        let rows = self.db.read(self.db.stmt(&sql, params)).await?;
        Ok(rows.rows.into_iter().filter_map(|row| row[0].text()).collect())
    }

    /// Runs the sweeper until the task is dropped: every [`SWEEP_INTERVAL`], and at once when
    /// poked ([`Files::sweep_soon`]) or when a record is deleted for good (its files go); and
    /// every [`ORPHAN_SWEEP_INTERVAL`], the blobs no row names.
    pub async fn run_sweeper(&self, store: &Store) {
        let mut changes = store.feed.subscribe();
        let mut orphans_due = tokio::time::Instant::now() + SWEEP_INTERVAL;
        loop {
            tokio::select! {
                _ = self.sweep.notified() => {}
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
                change = changes.recv() => {
                    if !matches!(change, Ok(ref event) if event.op == crate::data::feed::ChangeOp::Delete) {
                        continue;
                    }
                }
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(blobs = n, "swept deleted files' blobs"),
                Err(err) => tracing::warn!(%err, "sweeping deleted files failed"),
            }
            if tokio::time::Instant::now() >= orphans_due {
                orphans_due += ORPHAN_SWEEP_INTERVAL;
                match self.sweep_orphans(ORPHAN_GRACE).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(blobs = n, "deleted blobs that a crash left without a file"),
                    Err(err) => tracing::warn!(%err, "looking for orphaned blobs failed"),
                }
            }
        }
    }

    /// How many buckets and files there are, and the files' bytes.
    pub async fn usage(&self) -> Result<(i64, i64, i64), ApiError> {
        let rows = self
            .db
            .read_many(vec![
                self.db.stmt("SELECT COUNT(*) FROM _fb_buckets", vec![]),
                self.db.stmt("SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM _fb_files", vec![]),
            ])
            .await?;
        let buckets = rows[0].rows.first().and_then(|r| r[0].as_int()).unwrap_or(0);
        let files = rows[1].rows.first().map(|r| (r[0].as_int().unwrap_or(0), r[1].as_int().unwrap_or(0)));
        let (files, bytes) = files.unwrap_or((0, 0));
        Ok((buckets, files, bytes))
    }

    /// `Ok` when `caller` may download `file`: it is public, or the caller is the admin, its
    /// owner, or a reader of the record it belongs to. 401 for anonymous callers, else 403.
    pub async fn may_read(&self, store: &Store, file: &FileRecord, caller: &Caller) -> Result<(), ApiError> {
        if file.is_public || self.may_change(file, caller).is_ok() {
            return Ok(());
        }
        if let (Some(collection), Some(record)) = (&file.collection, &file.record_id)
            && store.get_record(collection, record, caller, Deleted::Hidden, Some(&["_id".to_owned()])).await.is_ok()
        {
            return Ok(());
        }
        Err(refused(caller))
    }

    /// `Ok` when `caller` may delete or replace `file`: its owner or the admin.
    pub fn may_change(&self, file: &FileRecord, caller: &Caller) -> Result<(), ApiError> {
        match caller {
            Caller::Admin => Ok(()),
            Caller::User(p) if file.owner_id.as_deref() == Some(p.id.as_str()) => Ok(()),
            Caller::User(_) => Err(ApiError::Forbidden("only the file's owner or the admin may change it".into())),
            Caller::Anonymous => Err(refused(caller)),
        }
    }
}

fn refused(caller: &Caller) -> ApiError {
    match caller {
        Caller::Anonymous => ApiError::Unauthorized("authentication required for this private file".into()),
        _ => ApiError::Forbidden("this file is private".into()),
    }
}
