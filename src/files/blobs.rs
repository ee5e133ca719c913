//! Where file contents live: a directory under the data dir, or an S3-compatible bucket,
//! both behind `object_store`'s one interface. Blobs are named by id (never by key), spread
//! over 256 directories or prefixes by the id's last two hex digits.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::config::S3Config;

/// A blob store failure; the detail is for the log.
#[derive(Debug, thiserror::Error)]
#[error("blob store: {message}")]
pub struct BlobError {
    message: String,
    /// The blob is not in the store (a file's record restored without its contents, say).
    missing: bool,
}

impl BlobError {
    pub fn from_message(message: &str) -> BlobError {
        BlobError { message: message.to_owned(), missing: false }
    }

    fn io(context: &str, err: &std::io::Error) -> BlobError {
        BlobError { message: format!("{context}: {err}"), missing: err.kind() == std::io::ErrorKind::NotFound }
    }

    /// Whether the blob is not in the store.
    pub fn is_missing(&self) -> bool {
        self.missing
    }
}

impl From<object_store::Error> for BlobError {
    fn from(err: object_store::Error) -> Self {
        let missing = matches!(err, object_store::Error::NotFound { .. });
        BlobError { message: err.to_string(), missing }
    }
}

/// Local part size: small enough to keep memory flat, large enough for few system calls.
const LOCAL_CHUNK: usize = 1024 * 1024;
/// S3 part size: above S3's 5 MiB minimum; 10,000 parts make an 80 GiB ceiling.
const S3_CHUNK: usize = 8 * 1024 * 1024;
/// Bytes read from a local file at a time when serving it.
const READ_CHUNK: usize = 1024 * 1024;
/// Parts in flight per upload (S3): the memory an upload holds is about this many parts.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store, whose files are read directly.
    local_root: Option<std::path::PathBuf>,
    chunk: usize,
    /// `local:<dir>` or `s3:<bucket>`, for the log and health answers.
    pub description: String,
}

impl Blobs {
    /// Blobs under `dir` (created if missing). `fsync` makes each finished upload durable
    /// before it is acknowledged.
    pub fn local(dir: &std::path::Path, fsync: bool) -> Result<Blobs, BlobError> {
        std::fs::create_dir_all(dir).map_err(|e| BlobError::io(&dir.display().to_string(), &e))?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true).with_fsync(fsync);
        Ok(Blobs {
            store: Arc::new(store),
            local_root: Some(std::fs::canonicalize(dir).map_err(|e| BlobError::io(&dir.display().to_string(), &e))?),
            chunk: LOCAL_CHUNK,
            description: format!("local:{}", dir.display()),
        })
    }

    pub fn s3(config: &S3Config) -> Result<Blobs, BlobError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(!config.path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        Ok(Blobs {
            store: Arc::new(builder.build()?),
            local_root: None,
            chunk: S3_CHUNK,
            description: format!("s3:{}", config.bucket),
        })
    }

    fn path(blob: &str) -> Path {
        let fan = blob.get(blob.len().saturating_sub(2)..).unwrap_or("00");
        Path::from(format!("blobs/{fan}/{blob}"))
    }

    /// A writer for a new blob. Nothing is visible under `blob` until [`BlobWriter::finish`].
    pub fn writer(&self, blob: &str) -> BlobWriter {
        BlobWriter {
            store: self.store.clone(),
            path: Self::path(blob),
            chunk: self.chunk,
            pending: Vec::new(),
            pending_len: 0,
            multipart: None,
        }
    }

    /// The size of the parts a large blob is written in.
    pub fn part_size(&self) -> usize {
        self.chunk
    }

    /// Writes a whole new blob that is already in memory, in one write.
    pub async fn put(&self, blob: &str, chunks: Vec<Bytes>) -> Result<(), BlobError> {
        let payload: PutPayload = chunks.into_iter().collect();
        self.store.put(&Self::path(blob), payload).await?;
        Ok(())
    }

    /// Writes a whole new blob that is already in memory, as [`Blobs::put`] does, on a task of
    /// its own: a caller dropped before the write ends does not leave the blob behind.
    pub async fn put_unclaimed(&self, blob: &str, chunks: Vec<Bytes>) -> Result<Unclaimed, BlobError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let blobs = self.clone();
        let blob = blob.to_owned();
        tokio::spawn(async move {
            let outcome = blobs.put(&blob, chunks).await.map(|()| Unclaimed::new(&blobs, &blob));
            // With the caller gone, the guard is dropped here and deletes the blob.
            let _ = tx.send(outcome);
        });
        rx.await.map_err(|_| BlobError::from_message("the blob's write stopped"))?
    }

    /// The blob's bytes, or the bytes of `range`, as a stream.
    pub async fn read(
        &self,
        blob: &str,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        if let Some(root) = &self.local_root {
            return read_local(root.join(Self::path(blob).as_ref()), range).await;
        }
        let options = GetOptions::new().with_range(range.map(GetRange::Bounded));
        let result = self.store.get_opts(&Self::path(blob), options).await?;
        match result.payload {
            // object_store reads a local file 8 KiB at a time, each on the blocking pool.
            GetResultPayload::File(file, _) => Ok(file_chunks(file, result.range)),
            GetResultPayload::Stream(stream) => Ok(stream.map(|chunk| chunk.map_err(BlobError::from)).boxed()),
        }
    }

    /// Whether the blob is in the store: what a `HEAD` answers from without reading it.
    pub async fn exists(&self, blob: &str) -> Result<bool, BlobError> {
        if let Some(root) = &self.local_root {
            return match tokio::fs::metadata(root.join(Self::path(blob).as_ref())).await {
                Ok(_) => Ok(true),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(err) => Err(BlobError::io("checking a blob", &err)),
            };
        }
        match self.store.head(&Self::path(blob)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes a blob; one already gone counts as deleted.
    pub async fn delete(&self, blob: &str) -> Result<(), BlobError> {
        match self.store.delete(&Self::path(blob)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// How many blobs there are and their bytes in all (a full listing: for stats and checks).
    pub async fn usage(&self) -> Result<(u64, u64), BlobError> {
        let mut listing = self.store.list(Some(&Path::from("blobs")));
        let (mut count, mut bytes) = (0, 0);
        while let Some(meta) = listing.next().await {
            count += 1;
            bytes += meta?.size;
        }
        Ok((count, bytes))
    }

    /// The ids of the blobs last written by `before_ms` (Unix ms), as a full listing finds
    /// them, page by page.
    pub fn written_before(&self, before_ms: i64) -> BoxStream<'static, Result<String, BlobError>> {
        self.store
            .list(Some(&Path::from("blobs")))
            .filter_map(move |meta| {
                let id = match meta {
                    Ok(meta) if meta.last_modified.timestamp_millis() <= before_ms => {
                        meta.location.filename().map(|id| Ok(id.to_owned()))
                    }
                    Ok(_) => None,
                    Err(err) => Some(Err(err.into())),
                };
                std::future::ready(id)
            })
            .boxed()
    }

    /// Removes the staging files of local uploads that a crash cut off (`{blob}#{n}`, which
    /// the store writes before renaming a finished blob into place) last written by
    /// `before_ms` (Unix ms); how many went. S3 keeps an unfinished multipart upload out of
    /// sight instead, for the bucket's lifecycle rule to end (README, "Files").
    pub async fn remove_stale_staging(&self, before_ms: i64) -> Result<usize, BlobError> {
        let Some(root) = self.local_root.clone() else {
            return Ok(0);
        };
        blocking(move || {
            let mut removed = 0;
            let Ok(fans) = std::fs::read_dir(root.join("blobs")) else { return Ok(0) };
            for fan in fans.flatten() {
                let Ok(files) = std::fs::read_dir(fan.path()) else { continue };
                for file in files.flatten() {
                    let staging = file.file_name().to_string_lossy().contains('#');
                    let written = file.metadata().and_then(|m| m.modified()).ok();
                    let written_ms = written.and_then(|w| w.duration_since(std::time::UNIX_EPOCH).ok());
                    let stale = written_ms.is_some_and(|w| w.as_millis() as i64 <= before_ms);
                    if staging && stale && std::fs::remove_file(file.path()).is_ok() {
                        removed += 1;
                    }
                }
            }
            Ok(removed)
        })
        .await
    }

    /// Whether the store answers: a metadata read of a blob that does not exist.
    pub async fn probe(&self) -> Result<(), BlobError> {
        if let Some(root) = &self.local_root {
            // Whether files could be made there now, asked of the kernel (read-only mounts,
            // immutable directories, permissions) without writing anything.
            let root = root.clone();
            blocking(move || writable(&root)).await?;
        }
        match self.store.head(&Path::from("health/probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(unix)]
fn writable(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `path` is a NUL-terminated string that lives across the call.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(unix))]
fn writable(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::metadata(dir).map(|_| ())
}

/// A local blob's bytes (or those of `range`): the file is opened and its first chunk read in
/// one trip to the blocking pool, which is all a small file needs.
async fn read_local(
    path: std::path::PathBuf,
    range: Option<Range<u64>>,
) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
    let (file, first, rest) = blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let range = match range {
            Some(range) => range,
            None => 0..file.metadata()?.len(),
        };
        let first = read_chunk(&mut file, range.start, range.end)?;
        let rest = range.start + first.len() as u64..range.end;
        Ok((file, first, rest))
    })
    .await?;
    let first = futures_util::stream::once(std::future::ready(Ok(first)));
    Ok(first.chain(file_chunks(file, rest)).boxed())
}

/// Bytes of a local file read in chunks of [`READ_CHUNK`], each on the blocking pool.
pub fn file_chunks(file: std::fs::File, range: Range<u64>) -> BoxStream<'static, Result<Bytes, BlobError>> {
    futures_util::stream::try_unfold((file, range), |(mut file, range)| async move {
        if range.start >= range.end {
            return Ok(None);
        }
        let (file, bytes) = blocking(move || {
            let bytes = read_chunk(&mut file, range.start, range.end)?;
            Ok((file, bytes))
        })
        .await?;
        let next = range.start + bytes.len() as u64..range.end;
        Ok(Some((bytes, (file, next))))
    })
    .boxed()
}

/// Up to [`READ_CHUNK`] bytes of `file` from `start`, stopping at `end`; a file shorter than
/// that is an error (its row says it is longer).
fn read_chunk(file: &mut std::fs::File, start: u64, end: u64) -> std::io::Result<Bytes> {
    use std::io::{Read, Seek, SeekFrom};
    let want = end.saturating_sub(start).min(READ_CHUNK as u64) as usize;
    file.seek(SeekFrom::Start(start))?;
    let mut buffer = Vec::with_capacity(want);
    file.take(want as u64).read_to_end(&mut buffer)?;
    if buffer.len() < want {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file is shorter than its size"));
    }
    Ok(Bytes::from(buffer))
}

/// A finished blob that no metadata row names yet. Its holder claims it once a row names it,
/// or deletes it; dropped unclaimed (the request that stored it went away before its row was
/// written), it deletes the blob in the background. So a blob never outlives its upload's
/// refusal or abandonment.
pub struct Unclaimed {
    /// `None` once claimed or deleted.
    blobs: Option<Blobs>,
    id: String,
}

impl Unclaimed {
    pub fn new(blobs: &Blobs, id: &str) -> Unclaimed {
        Unclaimed { blobs: Some(blobs.clone()), id: id.to_owned() }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A row names the blob now: it is no longer this guard's to delete.
    pub fn claim(&mut self) {
        self.blobs = None;
    }

    /// Deletes the blob now.
    pub async fn delete(mut self) {
        if let Some(blobs) = self.blobs.take() {
            delete_logged(blobs, &self.id).await;
        }
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if let Some(blobs) = self.blobs.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let id = std::mem::take(&mut self.id);
            runtime.spawn(async move { delete_logged(blobs, &id).await });
        }
    }
}

async fn delete_logged(blobs: Blobs, id: &str) {
    if let Err(err) = blobs.delete(id).await {
        tracing::warn!(%err, blob = %id, "deleting the blob of an upload that was not kept failed");
    }
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::from_message(&format!("reading a file: {e}")))?
        .map_err(|e| BlobError::io("reading a file", &e))
}

/// Writes one blob from a sequence of chunks: small blobs in one `put`, larger ones as a
/// multipart upload with a bounded number of parts in flight, so that memory stays flat
/// whatever the size. Dropped unfinished, the partial blob is discarded (local: the staging
/// file is removed; S3: the unfinished upload never becomes an object).
pub struct BlobWriter {
    store: Arc<dyn ObjectStore>,
    path: Path,
    chunk: usize,
    pending: Vec<Bytes>,
    pending_len: usize,
    multipart: Option<WriteMultipart>,
}

impl BlobWriter {
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), BlobError> {
        if let Some(upload) = &mut self.multipart {
            upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            upload.put(bytes);
            return Ok(());
        }
        // A blob of exactly one part still goes in one `put`: the part begins a multipart
        // upload only once more bytes follow it.
        if self.pending_len >= self.chunk {
            let mut upload =
                WriteMultipart::new_with_chunk_size(self.store.put_multipart(&self.path).await?, self.chunk);
            for part in self.pending.drain(..) {
                upload.put(part);
            }
            upload.put(bytes);
            self.pending_len = 0;
            self.multipart = Some(upload);
            return Ok(());
        }
        self.pending_len += bytes.len();
        self.pending.push(bytes);
        Ok(())
    }

    /// Makes the blob visible, complete.
    pub async fn finish(self) -> Result<(), BlobError> {
        match self.multipart {
            Some(upload) => upload.finish().await.map(|_| ()).map_err(Into::into),
            None => {
                let payload: PutPayload = self.pending.into_iter().collect();
                self.store.put(&self.path, payload).await.map(|_| ()).map_err(Into::into)
            }
        }
    }

    /// Discards what was written.
    pub async fn abort(self) {
        if let Some(upload) = self.multipart
            && let Err(err) = upload.abort().await
        {
            tracing::warn!(%err, "aborting an unfinished upload failed");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_directory_is_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::writable(dir.path()).is_ok());
        assert!(super::writable(&dir.path().join("gone")).is_err());
    }
}
