//! Conditional GET: JSON answers carry a strong `ETag` (a hash of the exact body), and a
//! request whose `If-None-Match` names it gets `304 Not Modified` with no body.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The answer to a GET: `value` as JSON with its ETag, or 304 when the client has it already.
pub fn json(request: &HeaderMap, value: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    if matches(request, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    let content_type = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, content_type), (header::ETAG, etag_value)], body).into_response())
}

/// Whether `If-None-Match` lists `etag` (or is `*`); weak and strong forms compare alike.
fn matches(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|list| list.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn if_none_match_lists_and_wildcards() {
        assert!(matches(&headers("\"abc\""), "\"abc\""));
        assert!(matches(&headers("\"x\", W/\"abc\""), "\"abc\""));
        assert!(matches(&headers("*"), "\"abc\""));
        assert!(!matches(&headers("\"abd\""), "\"abc\""));
        assert!(!matches(&HeaderMap::new(), "\"abc\""));
    }
}
