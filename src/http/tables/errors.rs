//! Errors as PostgREST's clients read them. postgrest-js and postgrest-py show an error's
//! `message`, `code`, `details` and `hint`; on the tables surface every error answer carries
//! them beside Ferrobase's own `error` (and `field`, `index`), with the same text.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ErrorCode;

/// The largest error body rewritten; errors are small, and a larger body is left as it is.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Adds PostgREST's error fields to an error answer (one that carries an [`ErrorCode`]).
pub async fn postgrest_fields(response: Response) -> Response {
    let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>().copied() else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(Value::Object(mut error)) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let message = error.get("error").cloned().unwrap_or(Value::Null);
    let details = match (error.get("field").and_then(Value::as_str), error.get("index").and_then(Value::as_u64)) {
        (Some(field), Some(index)) => json!(format!("item {index}, field '{field}'")),
        (Some(field), None) => json!(format!("field '{field}'")),
        (None, Some(index)) => json!(format!("item {index}")),
        (None, None) => Value::Null,
    };
    error.insert("message".into(), message);
    error.insert("code".into(), json!(code));
    error.insert("details".into(), details);
    error.insert("hint".into(), Value::Null);
    let bytes = serde_json::to_vec(&error).unwrap_or_default();
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(parts, Body::from(bytes))
}
