//! `POST /api/v1/admin/backup`: a consistent backup streamed as a download while writes go
//! on. SQLite: a `.db` file (`VACUUM INTO` a temporary file, unlinked as soon as it is open,
//! so nothing is left behind however the download ends). PostgreSQL: `pg_dump`'s custom
//! format, streamed as `pg_dump` writes it. `ferrobase restore` takes either back.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use crate::app::AppState;
use crate::data::backup::{self, Backup};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::Admin;

/// Bytes read from `pg_dump` at a time.
const DUMP_CHUNK: usize = 256 * 1024;

pub async fn backup(_: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let config = state.config();
    let started = backup::start(&state.store().db, config.database_url.as_deref(), &config.data_dir).await?;
    let stamp = httpdate::fmt_http_date(std::time::SystemTime::now());
    let stamp: String = stamp.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    match started {
        Backup::SqliteFile(path) => {
            let file = std::fs::File::open(&path).map_err(ApiError::internal)?;
            let size = file.metadata().map_err(ApiError::internal)?.len();
            // Unlinked now: the open file is all that is left, and it goes with the stream.
            std::fs::remove_file(&path).map_err(ApiError::internal)?;
            let stream = crate::files::blobs::file_chunks(file, 0..size);
            let headers = [
                (header::CONTENT_TYPE, "application/vnd.sqlite3".to_owned()),
                (header::CONTENT_LENGTH, size.to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"ferrobase-{stamp}.db\"")),
            ];
            Ok((headers, Body::from_stream(stream)).into_response())
        }
        Backup::PgDump(mut child) => {
            let mut stdout = child.stdout.take().ok_or_else(|| ApiError::internal("pg_dump has no output"))?;
            // The first bytes, before answering: a dump that cannot start is a 500, not an
            // empty download.
            let mut first = vec![0; DUMP_CHUNK];
            let read = stdout.read(&mut first).await.map_err(ApiError::internal)?;
            if read == 0 {
                let output = child.wait_with_output().await.map_err(ApiError::internal)?;
                return Err(ApiError::internal(format!("pg_dump: {}", String::from_utf8_lossy(&output.stderr).trim())));
            }
            first.truncate(read);
            let rest = futures_util::stream::try_unfold((stdout, child), |(mut stdout, mut child)| async move {
                let mut chunk = vec![0; DUMP_CHUNK];
                let read = stdout.read(&mut chunk).await?;
                if read == 0 {
                    let status = child.wait().await?;
                    if !status.success() {
                        return Err(std::io::Error::other(format!("pg_dump exited with {status}")));
                    }
                    return Ok(None);
                }
                chunk.truncate(read);
                Ok(Some((Bytes::from(chunk), (stdout, child))))
            });
            let stream =
                futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) }).chain(rest);
            let headers = [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"ferrobase-{stamp}.dump\"")),
            ];
            Ok((headers, Body::from_stream(stream)).into_response())
        }
    }
}
