//! Streaming a file into a new blob. The writing runs on its own task, fed chunk by chunk
//! through a short channel: the request handler counts bytes against the limit as they
//! arrive (so a 413 comes as soon as the limit is passed) and, if the request is dropped
//! half way (the client went away), the closed channel tells the task to discard the blob.
//! Nothing is kept in memory beyond a few chunks and the blob writer's parts in flight.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::blobs::{BlobError, Blobs, Unclaimed};

/// What was stored: its size. The bytes are not hashed: a blob never changes once written, so
/// its name is the `ETag`, and hashing every byte would take more of an upload's CPU than
/// receiving and writing it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Blob(#[from] BlobError),
}

enum Message {
    Data(Bytes),
    End,
}

/// Chunks in the channel: with the writer's own buffer this bounds an upload's memory.
const QUEUED_CHUNKS: usize = 4;

/// An upload in progress into one blob.
pub struct Ingest {
    tx: mpsc::Sender<Message>,
    result: oneshot::Receiver<Result<(Stored, Unclaimed), BlobError>>,
    received: u64,
    limit: u64,
}

impl Ingest {
    /// Starts writing blob `blob`; at most `limit` bytes are accepted.
    pub fn start(blobs: &Blobs, blob: &str, limit: u64) -> Ingest {
        let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
        let (result_tx, result) = oneshot::channel();
        let writer = blobs.writer(blob);
        let (blobs, blob) = (blobs.clone(), blob.to_owned());
        tokio::spawn(async move {
            let outcome = write(writer, rx).await.map(|stored| (stored, Unclaimed::new(&blobs, &blob)));
            // A request dropped before the end aborted the blob; one dropped while it was being
            // finished is not there to take it: the guard, dropped here, deletes it.
            let _ = result_tx.send(outcome);
        });
        Ingest { tx, result, received: 0, limit }
    }

    pub async fn push(&mut self, chunk: Bytes) -> Result<(), IngestError> {
        self.received += chunk.len() as u64;
        if self.received > self.limit {
            return Err(IngestError::TooLarge { limit: self.limit });
        }
        if self.tx.send(Message::Data(chunk)).await.is_err() {
            // The writer stopped early: its error says why.
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Completes the blob; it is visible once this returns `Ok`, and the caller's to claim.
    pub async fn finish(self) -> Result<(Stored, Unclaimed), IngestError> {
        // When the writer already stopped, its result says why.
        let _ = self.tx.send(Message::End).await;
        match self.result.await {
            Ok(outcome) => outcome.map_err(Into::into),
            Err(_) => Err(BlobError::from_message("the writer stopped").into()),
        }
    }

    async fn failure(&mut self) -> IngestError {
        match (&mut self.result).await {
            Ok(Err(err)) => err.into(),
            _ => BlobError::from_message("the writer stopped").into(),
        }
    }
}

async fn write(mut writer: super::blobs::BlobWriter, mut rx: mpsc::Receiver<Message>) -> Result<Stored, BlobError> {
    let mut size = 0u64;
    loop {
        match rx.recv().await {
            Some(Message::Data(chunk)) => {
                size += chunk.len() as u64;
                if let Err(err) = writer.write(chunk).await {
                    writer.abort().await;
                    return Err(err);
                }
            }
            Some(Message::End) => {
                writer.finish().await?;
                return Ok(Stored { size });
            }
            // The request ended without `End`: refused, cut off or dropped.
            None => {
                writer.abort().await;
                return Err(BlobError::from_message("the upload did not complete"));
            }
        }
    }
}
