//! Serving a file's bytes: `ETag`, the preconditions (`If-None-Match` and `If-Modified-Since`
//! → 304, `If-Match` and `If-Unmodified-Since` → 412), one `Range` (206, or 416 when it cannot
//! be satisfied; `If-Range` honoured), `HEAD` with the same headers and no body,
//! and a `Content-Disposition` carrying the original filename. Bytes stream from the blob
//! store as they are read; nothing holds the whole file.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::files::meta::FileRecord;

/// How a file is answered.
#[derive(Debug, Clone, Default)]
pub struct Serve {
    /// `HEAD`: headers only.
    pub head: bool,
    /// `?download`: `Content-Disposition: attachment` instead of `inline`.
    pub attachment: bool,
    /// `?download=name`: the name the download is saved under, instead of the file's own.
    pub save_as: Option<String>,
}

impl Serve {
    /// How the query asks for the file: `?download` (empty, or `true`, `1`, `yes`, `on`) for an
    /// attachment; `false`, `0`, `no` or `off` inline; any other value for an attachment saved
    /// under that name (as supabase-js's `download: 'name'` asks), cleaned as an upload's name.
    pub fn asked(head: bool, pairs: &[(String, String)]) -> Serve {
        let (attachment, save_as) = match pairs.iter().find(|(k, _)| k == "download").map(|(_, v)| v.as_str()) {
            None => (false, None),
            // `?download` alone asks for it (where a flag's empty value is false).
            Some("") => (true, None),
            Some(value) => match super::flag("download", value) {
                Ok(on) => (on, None),
                Err(_) => (true, Some(crate::files::names::clean_filename(value))),
            },
        };
        Serve { head, attachment, save_as }
    }
}

/// The byte range a request asked for, resolved against the file's size.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    Whole,
    /// Inclusive first and last byte.
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads a `Range` header. Only single `bytes=` ranges (the unit in any case) are served as
/// such; anything else (several ranges, other units, nonsense) gets the whole file, as RFC 9110
/// allows. A position past what a number holds is past the end.
pub fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let spec =
        range.and_then(|r| r.trim().split_once('=')).filter(|(unit, _)| unit.trim().eq_ignore_ascii_case("bytes"));
    let Some((_, spec)) = spec else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    // Digits only (Rust's own parse would take a sign too).
    let number = |s: &str| match s.parse::<u64>() {
        _ if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) => None,
        Ok(n) => Some(n),
        Err(_) => Some(u64::MAX),
    };
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match number(last) {
            Some(0) => Wanted::Unsatisfiable,
            Some(n) if size > 0 => Wanted::Part(size.saturating_sub(n), size - 1),
            // An empty file: the one range it satisfies (RFC 9110, 14.1.1) is all of it.
            Some(_) => Wanted::Whole,
            None => Wanted::Whole,
        },
        // bytes=N-: from N to the end.
        (false, true) => match number(first) {
            Some(start) if start < size => Wanted::Part(start, size - 1),
            Some(_) => Wanted::Unsatisfiable,
            None => Wanted::Whole,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end && start < size => Wanted::Part(start, end.min(size - 1)),
            (Some(start), Some(end)) if start <= end => Wanted::Unsatisfiable,
            _ => Wanted::Whole,
        },
        (true, true) => Wanted::Whole,
    }
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, `*` matching anything).
fn none_match(header: Option<&str>, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    header.is_some_and(|h| h.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == bare))
}

/// Whether an `If-Match` list names `etag` (strong comparison: a weak tag never matches).
fn any_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag == etag)
}

/// What the request's preconditions make of it (RFC 9110, 13.2.2), in their order:
/// `If-Match`, else `If-Unmodified-Since` (412 when the file is not the one the client
/// expects); `If-None-Match`, else `If-Modified-Since` (304 when the client has it already).
/// A date that does not parse is ignored, as the RFC says.
#[derive(Debug, PartialEq, Eq)]
enum Precondition {
    Proceed,
    Failed,
    NotModified,
}

/// A list header as one list: its lines joined, as RFC 9110 (5.3) reads a field sent on
/// several lines. `None` when the request does not send it.
fn joined(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let lines: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!lines.is_empty()).then(|| lines.join(", "))
}

fn precondition(headers: &HeaderMap, etag: &str, modified: std::time::SystemTime) -> Precondition {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let date = |name: header::HeaderName| text(name).and_then(|d| httpdate::parse_http_date(d.trim()).ok());
    // HTTP dates have whole seconds.
    let modified = httpdate::parse_http_date(&httpdate::fmt_http_date(modified)).unwrap_or(modified);
    match joined(headers, header::IF_MATCH).as_deref() {
        Some(tags) if !any_match(tags, etag) => return Precondition::Failed,
        Some(_) => {}
        None if date(header::IF_UNMODIFIED_SINCE).is_some_and(|since| modified > since) => {
            return Precondition::Failed;
        }
        None => {}
    }
    match joined(headers, header::IF_NONE_MATCH).as_deref() {
        Some(tags) if none_match(Some(tags), etag) => Precondition::NotModified,
        Some(_) => Precondition::Proceed,
        None if date(header::IF_MODIFIED_SINCE).is_some_and(|since| modified <= since) => Precondition::NotModified,
        None => Precondition::Proceed,
    }
}

pub async fn serve(state: &AppState, file: &FileRecord, headers: &HeaderMap, how: Serve) -> ApiResult<Response> {
    let etag = file.etag();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let last_modified = httpdate::fmt_http_date(modified(file));
    match precondition(headers, &etag, modified(file)) {
        Precondition::Proceed => {}
        Precondition::Failed => {
            return Err(ApiError::PreconditionFailed(
                "the file is not the version the request's If-Match or If-Unmodified-Since names".into(),
            ));
        }
        // The headers a 200 would carry that describe the version (RFC 9110, 15.4.5).
        Precondition::NotModified => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            set(&mut response, header::ETAG, &etag);
            set(&mut response, header::LAST_MODIFIED, &last_modified);
            set(&mut response, header::CACHE_CONTROL, cache_control(file));
            // A 304 may carry only the length a 200 would (RFC 9110, 8.6). Left unset, the
            // router would say 0, which hyper passes on in an answer to HEAD.
            if how.head {
                set(&mut response, header::CONTENT_LENGTH, &file.size.to_string());
            }
            return Ok(response);
        }
    }
    // `If-Range` names the version the client holds: its ETag, or its Last-Modified date.
    // A validator that is not text matches nothing: the whole file is sent.
    let range_applies = headers
        .get(header::IF_RANGE)
        .is_none_or(|value| value.to_str().is_ok_and(|tag| tag.trim() == etag || tag.trim() == last_modified));
    let wanted = if range_applies { wanted(text(header::RANGE), file.size) } else { Wanted::Whole };
    let (status, range) = match wanted {
        Wanted::Whole => (StatusCode::OK, None),
        Wanted::Part(first, last) => (StatusCode::PARTIAL_CONTENT, Some((first, last))),
        Wanted::Unsatisfiable => {
            let mut response =
                ApiError::RangeNotSatisfiable(format!("the file has {} bytes", file.size)).into_response();
            set(&mut response, header::CONTENT_RANGE, &format!("bytes */{}", file.size));
            return Ok(response);
        }
    };
    let length = range.map_or(file.size, |(first, last)| last - first + 1);
    let blobs = &state.files().blobs;
    let body = if how.head || length == 0 {
        // What a GET would answer, without reading the contents.
        if !blobs.exists(&file.blob).await.map_err(|err| blob_error(file, err))? {
            return Err(contents_missing());
        }
        Body::empty()
    } else {
        let blob_range = range.map(|(first, last)| first..last + 1);
        let stream = blobs.read(&file.blob, blob_range).await.map_err(|err| blob_error(file, err))?;
        Body::from_stream(stream)
    };
    let mut response = (status, body).into_response();
    set(&mut response, header::CONTENT_TYPE, &file.mime_type);
    set(&mut response, header::CONTENT_LENGTH, &length.to_string());
    set(&mut response, header::ETAG, &etag);
    set(&mut response, header::ACCEPT_RANGES, "bytes");
    set(&mut response, header::LAST_MODIFIED, &last_modified);
    let filename = how.save_as.as_deref().unwrap_or(&file.filename);
    set(&mut response, header::CONTENT_DISPOSITION, &disposition(filename, how.attachment || is_markup(file)));
    set(&mut response, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut response, header::CACHE_CONTROL, cache_control(file));
    // Markup served from this origin must not run as a page of it.
    set(&mut response, header::CONTENT_SECURITY_POLICY, "sandbox");
    if let Some((first, last)) = range {
        set(&mut response, header::CONTENT_RANGE, &format!("bytes {first}-{last}/{}", file.size));
    }
    Ok(response)
}

/// A blob store failure as an answer: 404 when the contents are missing, else 503.
fn blob_error(file: &FileRecord, err: crate::files::blobs::BlobError) -> ApiError {
    if err.is_missing() {
        tracing::error!(%err, file = %file.id, "a file's contents are missing");
        return contents_missing();
    }
    crate::files::upload::blob_error(err)
}

/// The record is there but its contents are not (a database restored without the file store,
/// say): the file cannot be served.
fn contents_missing() -> ApiError {
    ApiError::not_found("the file's contents are missing from the file store")
}

fn set(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn cache_control(file: &FileRecord) -> &'static str {
    if file.is_public { "public, max-age=3600" } else { "private, no-cache" }
}

fn modified(file: &FileRecord) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(file.updated_at.max(0) as u64)
}

/// Types a browser would run as a document: always downloaded, never shown inline. Every
/// XML type counts (`+xml`: RSS, Atom, XSLT, MathML…), since a browser renders XML with its
/// stylesheets.
fn is_markup(file: &FileRecord) -> bool {
    let essence = crate::files::sniff::essence(&file.mime_type).to_ascii_lowercase();
    matches!(essence.as_str(), "text/html" | "text/xml" | "application/xml" | "text/xsl") || essence.ends_with("+xml")
}

/// `inline` or `attachment`, with the filename as ASCII (`filename=`) and as UTF-8
/// (`filename*=`, RFC 6266), so no quote or byte of it can break out of the header.
pub fn disposition(filename: &str, attachment: bool) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let kind = if attachment { "attachment" } else { "inline" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}", utf8_percent_encode(filename, NON_ALPHANUMERIC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_resolve_against_the_size() {
        assert_eq!(wanted(None, 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-3"), 10), Wanted::Part(0, 3));
        assert_eq!(wanted(Some("bytes=5-"), 10), Wanted::Part(5, 9));
        assert_eq!(wanted(Some("bytes=-4"), 10), Wanted::Part(6, 9));
        assert_eq!(wanted(Some("bytes=-40"), 10), Wanted::Part(0, 9));
        assert_eq!(wanted(Some("bytes=8-100"), 10), Wanted::Part(8, 9));
        assert_eq!(wanted(Some("bytes=10-"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=20-30"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-5"), 0), Wanted::Whole, "an empty file satisfies a suffix");
        assert_eq!(wanted(Some("bytes=-0"), 0), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("Bytes=0-3"), 10), Wanted::Part(0, 3));
        assert_eq!(wanted(Some("bytes=0-99999999999999999999999"), 10), Wanted::Part(0, 9));
        assert_eq!(wanted(Some("bytes=99999999999999999999999-"), 10), Wanted::Unsatisfiable);
        let signed = ["bytes=+1-2", "bytes=-+3", "bytes=1-+2", "bytes=+1-"];
        for ignored in
            ["bytes=0-1,3-4", "items=0-1", "bytes=a-b", "bytes=5-2", "bytes=-", "bytes"].into_iter().chain(signed)
        {
            assert_eq!(wanted(Some(ignored), 10), Wanted::Whole, "{ignored}");
        }
    }

    #[test]
    fn etags_match_weakly_and_in_lists() {
        assert!(none_match(Some("\"abc\""), "\"abc\""));
        assert!(none_match(Some("W/\"abc\""), "\"abc\""));
        assert!(none_match(Some("\"x\", \"abc\""), "\"abc\""));
        assert!(none_match(Some("*"), "\"abc\""));
        assert!(!none_match(Some("\"abd\""), "\"abc\""));
        assert!(!none_match(None, "\"abc\""));
    }

    #[test]
    fn preconditions_in_the_rfcs_order() {
        let modified = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_500);
        let (before, at, after) =
            ("Tue, 14 Nov 2023 22:13:19 GMT", "Tue, 14 Nov 2023 22:13:20 GMT", "Tue, 14 Nov 2023 22:13:21 GMT");
        let asked = |pairs: &[(header::HeaderName, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(name.clone(), HeaderValue::from_str(value).unwrap());
            }
            precondition(&headers, "\"abc\"", modified)
        };
        use Precondition::*;
        assert_eq!(asked(&[]), Proceed);
        assert_eq!(asked(&[(header::IF_MATCH, "\"abc\"")]), Proceed);
        assert_eq!(asked(&[(header::IF_MATCH, "\"x\", *")]), Proceed);
        assert_eq!(asked(&[(header::IF_MATCH, "W/\"abc\"")]), Failed, "If-Match compares strongly");
        assert_eq!(asked(&[(header::IF_MATCH, "\"nope\"")]), Failed);
        assert_eq!(asked(&[(header::IF_UNMODIFIED_SINCE, before)]), Failed);
        assert_eq!(asked(&[(header::IF_UNMODIFIED_SINCE, at)]), Proceed, "dates have whole seconds");
        assert_eq!(asked(&[(header::IF_MATCH, "\"abc\""), (header::IF_UNMODIFIED_SINCE, before)]), Proceed);
        assert_eq!(asked(&[(header::IF_MODIFIED_SINCE, at)]), NotModified);
        assert_eq!(asked(&[(header::IF_MODIFIED_SINCE, after)]), NotModified);
        assert_eq!(asked(&[(header::IF_MODIFIED_SINCE, before)]), Proceed);
        assert_eq!(asked(&[(header::IF_MODIFIED_SINCE, "yesterday")]), Proceed, "a bad date is ignored");
        assert_eq!(asked(&[(header::IF_NONE_MATCH, "\"x\""), (header::IF_MODIFIED_SINCE, at)]), Proceed);
        assert_eq!(asked(&[(header::IF_NONE_MATCH, "W/\"abc\"")]), NotModified);
        assert_eq!(asked(&[(header::IF_MATCH, "\"nope\""), (header::IF_NONE_MATCH, "\"abc\"")]), Failed);
        // A list sent on several lines is one list.
        assert_eq!(asked(&[(header::IF_NONE_MATCH, "\"x\""), (header::IF_NONE_MATCH, "\"abc\"")]), NotModified);
        assert_eq!(asked(&[(header::IF_MATCH, "\"x\""), (header::IF_MATCH, "\"abc\"")]), Proceed);
    }

    #[test]
    fn dispositions_cannot_break_out_of_the_header() {
        let d = disposition("a\"b\r\nSet-Cookie: x;é.png", false);
        assert!(d.starts_with("inline; filename=\"a_b__Set-Cookie: x;_.png\"; filename*=UTF-8''"));
        assert!(HeaderValue::from_str(&d).is_ok());
        assert!(disposition("x.html", true).starts_with("attachment;"));
    }

    proptest! {
        #[test]
        fn a_served_part_lies_within_the_file(range in "\\PC{0,30}", size in 0u64..1000) {
            if let Wanted::Part(first, last) = wanted(Some(&range), size) {
                prop_assert!(first <= last && last < size);
            }
        }

        #[test]
        fn every_filename_makes_a_valid_header(name in "\\PC{0,100}") {
            prop_assert!(HeaderValue::from_str(&disposition(&name, false)).is_ok());
        }
    }
}
