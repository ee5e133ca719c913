//! Multipart bodies, read with bounded part headers. multer (under axum's `Multipart`) holds a
//! part's header block in memory until its closing blank line, however long it is, so one
//! request with a header line of hundreds of megabytes would be held whole. The body is read
//! through a [`HeadWindow`]: while a part's headers are being read, the bytes that arrive before
//! their blank line may not pass [`MAX_PART_HEADER_BYTES`].

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::multipart::Field;
use axum::extract::{FromRequest, Multipart, Request};
use futures_util::StreamExt;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::limits::MAX_PART_HEADER_BYTES;

/// A multipart form whose parts are read one after the other.
pub struct Form {
    multipart: Multipart,
    window: Arc<Mutex<HeadWindow>>,
}

impl Form {
    /// The request's body as a form; 400 (as JSON) when it is not `multipart/form-data` with a
    /// boundary.
    pub async fn from_request(request: Request, state: &AppState) -> ApiResult<Form> {
        let window = Arc::new(Mutex::new(HeadWindow::default()));
        let watched = window.clone();
        let request = request.map(|body| {
            Body::from_stream(body.into_data_stream().map(move |chunk| {
                let chunk = chunk?;
                if watched.lock().expect("head window").admits(&chunk) {
                    Ok(chunk)
                } else {
                    Err(axum::Error::new("a form part's headers are too long"))
                }
            }))
        });
        let multipart = Multipart::from_request(request, state).await.map_err(|e| {
            ApiError::bad_request(format!("invalid multipart form: {}", e.body_text().trim_end_matches('.')))
        })?;
        Ok(Form { multipart, window })
    }

    /// The next part, once its headers are read. The part before it must have been read to
    /// its end: what is left of it would count against the next part's headers.
    pub async fn next_field(&mut self) -> ApiResult<Option<Field<'_>>> {
        self.window.lock().expect("head window").open();
        let field = self.multipart.next_field().await;
        let exceeded = self.window.lock().expect("head window").close();
        match field {
            Ok(field) => Ok(field),
            Err(_) if exceeded => Err(ApiError::bad_request(format!(
                "a form part's headers are longer than {MAX_PART_HEADER_BYTES} bytes (MAX_PART_HEADER_BYTES)"
            ))),
            Err(err) => Err(form_error(err)),
        }
    }
}

pub fn form_error(err: axum::extract::multipart::MultipartError) -> ApiError {
    if crate::http::serve::body_stalled(&err) {
        return crate::http::serve::stalled_body_error();
    }
    ApiError::bad_request(format!("invalid multipart form: {}", err.body_text()))
}

/// What has arrived since a part's headers began to be read.
#[derive(Default)]
struct HeadWindow {
    open: bool,
    /// Bytes counted so far (those before the blank line that ends the headers).
    counted: usize,
    /// The last bytes counted, for a blank line split across chunks.
    tail: Vec<u8>,
    /// The blank line has arrived: the rest is the part's content.
    ended: bool,
    exceeded: bool,
}

const BLANK_LINE: &[u8] = b"\r\n\r\n";

impl HeadWindow {
    fn open(&mut self) {
        *self = HeadWindow { open: true, ..HeadWindow::default() };
    }

    /// Closes the window; whether the headers were too long.
    fn close(&mut self) -> bool {
        self.open = false;
        self.exceeded
    }

    /// Counts a chunk that arrived; `false` when it takes the headers past the limit.
    fn admits(&mut self, chunk: &[u8]) -> bool {
        if !self.open || self.ended {
            return true;
        }
        let room = MAX_PART_HEADER_BYTES - self.counted;
        let counted = &chunk[..chunk.len().min(room)];
        let mut probe = std::mem::take(&mut self.tail);
        probe.extend_from_slice(counted);
        if probe.windows(BLANK_LINE.len()).any(|w| w == BLANK_LINE) {
            self.ended = true;
            return true;
        }
        self.counted += counted.len();
        if chunk.len() > room {
            self.exceeded = true;
            return false;
        }
        self.tail = probe[probe.len().saturating_sub(BLANK_LINE.len() - 1)..].to_vec();
        true
    }
}

/// The `Content-Type` a request or a form's part declares, as sent: a value that is not
/// ASCII or has malformed parameters still names its type (the parameters are judged, and
/// dropped, by [`crate::files::sniff::declared_type`]).
pub fn declared_type(headers: &axum::http::HeaderMap) -> Option<String> {
    headers.get(axum::http::header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> HeadWindow {
        let mut window = HeadWindow::default();
        window.open();
        window
    }

    #[test]
    fn headers_may_end_in_any_chunk_within_the_limit() {
        let mut w = window();
        assert!(w.admits(b"--b\r\nContent-Disposition: form-data; name=\"file\"\r"));
        assert!(w.admits(b"\n\r"));
        assert!(w.admits(b"\n"));
        // After the blank line, the part's content is not counted, however long.
        assert!(w.admits(&vec![b'x'; MAX_PART_HEADER_BYTES * 4]));
    }

    #[test]
    fn headers_without_an_end_stop_at_the_limit() {
        let mut w = window();
        let line = vec![b'A'; 1000];
        let mut admitted = 0;
        while w.admits(&line) {
            admitted += line.len();
            assert!(admitted <= MAX_PART_HEADER_BYTES, "counted past the limit");
        }
        assert!(w.close());
        // One huge chunk is refused at once.
        let mut w = window();
        assert!(!w.admits(&vec![b'A'; MAX_PART_HEADER_BYTES + 1]));
    }

    #[test]
    fn a_closed_window_counts_nothing() {
        let mut w = HeadWindow::default();
        assert!(w.admits(&vec![b'A'; MAX_PART_HEADER_BYTES * 2]));
        let mut w = window();
        assert!(!w.close());
        assert!(w.admits(&vec![b'A'; MAX_PART_HEADER_BYTES * 2]));
    }
}
