//! Extractors: who is calling, JSON bodies, query pairs and path parameters, each turning
//! bad input into an [`ApiError`] (a JSON 4xx) instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::data::access::{Caller, Principal};
use crate::error::{ApiError, codes};
use crate::util::constant_time_eq;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let token = bearer_token(header.as_bytes())?;
            if constant_time_eq(token.as_bytes(), state.admin_secret().as_bytes()) {
                return Ok(Caller::Admin);
            }
            return state.auth().authenticate_token(token).await.map(Caller::User);
        }
        if let Some(key) = parts.headers.get("x-api-key") {
            let key = key.to_str().map_err(|_| ApiError::Unauthorized("invalid API key".into()))?;
            return state.auth().authenticate_api_key(key.trim()).await.map(Caller::User);
        }
        Ok(Caller::Anonymous)
    }
}

/// The token of an `Authorization: Bearer <token>` header, trimmed; `None` without one. For
/// the middlewares that only look (the extractors above answer 401 for a malformed header).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    bearer_credentials(headers.get(AUTHORIZATION)?.to_str().ok()?)
}

/// What follows the `Bearer` scheme, trimmed. A scheme name is case-insensitive (RFC 9110
/// section 11.1), so `bearer` and `BEARER` are the same scheme.
fn bearer_credentials(header: &str) -> Option<&str> {
    let (scheme, credentials) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// A signed-in user (access token or API key); anyone else gets 401.
pub struct User(pub Principal);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::User(principal) => Ok(User(principal)),
            Caller::Admin => {
                Err(ApiError::bad_request("this endpoint acts for a user; the admin secret is not a user"))
            }
            Caller::Anonymous => Err(ApiError::Unauthorized("authentication required".into())),
        }
    }
}

fn bearer_token(header: &[u8]) -> Result<&str, ApiError> {
    let text =
        std::str::from_utf8(header).map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    let token = bearer_credentials(text)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into()))?;
    Ok(token)
}

/// Admin endpoints: the caller must hold the admin secret. A signed-in user gets 403.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            // A user's valid API key is a known caller without the right: 403, as a user's
            // token gets.
            let key = parts.headers.get("x-api-key").and_then(|k| k.to_str().ok());
            if let Some(key) = key
                && state.auth().authenticate_api_key(key.trim()).await.is_ok()
            {
                return Err(ApiError::Forbidden("admin endpoints need the admin secret".into()));
            }
            return Err(ApiError::Unauthorized("admin endpoints need 'Authorization: Bearer <admin secret>'".into()));
        };
        let token = bearer_token(header.as_bytes())?;
        if constant_time_eq(token.as_bytes(), state.admin_secret().as_bytes()) {
            return Ok(Admin);
        }
        match state.auth().authenticate_token(token).await {
            Ok(_) => Err(ApiError::Forbidden("admin endpoints need the admin secret".into())),
            Err(_) => Err(ApiError::Unauthorized("invalid admin secret".into())),
        }
    }
}

/// The client's user agent and address, recorded on sessions.
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        let ip = super::client_ip::of_parts(state, parts).map(|ip| ip.to_string());
        Ok(ClientInfo { user_agent, ip })
    }
}

/// A JSON body of any content type, within the body size limit.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        uncompressed(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(
                    "the request body is larger than allowed (--max-body-bytes, FERROBASE_MAX_BODY_BYTES)".into(),
                )
            } else if super::serve::body_stalled(&rejection) {
                super::serve::stalled_body_error()
            } else {
                ApiError::bad_input(codes::BODY, format!("cannot read the request body: {rejection}"))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::bad_input(codes::BODY, "the request body must be JSON"));
        }
        if escapes_nul(&bytes) {
            return Err(nul_refused(&bytes));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|err| ApiError::bad_input(codes::BODY, format!("invalid JSON body: {err}")))
    }
}

/// 415 for a body sent compressed: JSON bodies are read as sent, and a gzip stream read as
/// JSON would only be a confusing 400.
fn uncompressed(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    for coding in headers.get_all(axum::http::header::CONTENT_ENCODING) {
        let coding = coding.to_str().unwrap_or("?").trim();
        if !coding.is_empty() && !coding.eq_ignore_ascii_case("identity") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "request bodies are read uncompressed: Content-Encoding '{}' is not supported",
                coding.chars().take(40).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// A JSON body declared as JSON: without a `Content-Type`, or with one naming JSON
/// (`application/json`, `…+json`). Another type (`text/csv`, a form, XML, `text/plain`) is a
/// 415 rather than read as JSON anyway (the tables surface; PostgREST would read CSV and forms
/// as such).
pub struct JsonOnlyBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOnlyBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(declared) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let media = crate::files::sniff::essence(declared.to_str().unwrap_or("")).to_ascii_lowercase();
            if media != "application/json" && !media.ends_with("+json") {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the body must be JSON (Content-Type: application/json), not '{}'",
                    media.chars().take(100).collect::<String>()
                )));
            }
        }
        JsonBody::from_request(req, state).await.map(|JsonBody(body)| JsonOnlyBody(body))
    }
}

/// A request's fields from a JSON object; `what` names the body in refusals. serde alone would
/// also take an array, its values read in field order (`["photos", true]` as `{"name":
/// "photos", "is_public": true}`).
pub fn from_object<T: DeserializeOwned>(body: serde_json::Value, what: &str) -> Result<T, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_input(codes::BODY, format!("invalid {what}: the body must be a JSON object")));
    }
    serde_json::from_value(body).map_err(|e| ApiError::bad_input(codes::BODY, format!("invalid {what}: {e}")))
}

/// Whether JSON text holds `\u0000` (the only way JSON can hold NUL): an escape, not a
/// `\\u0000`, whose backslash is itself escaped.
fn escapes_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// 400 for a body holding NUL, which no stored text may hold (PostgreSQL's cannot): refused
/// alike on both backends, naming the field it is in (and, in an array of records, the
/// record's index, as every refusal of a bulk write does).
fn nul_refused(bytes: &[u8]) -> ApiError {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let (index, first_object) = match &value {
        serde_json::Value::Array(items) => match items.iter().position(crate::data::records::json_holds_nul) {
            Some(i) => (Some(i), items.get(i)),
            None => (None, None),
        },
        other => (None, Some(other)),
    };
    let field = first_object
        .and_then(serde_json::Value::as_object)
        .and_then(|object| object.iter().find(|(k, v)| k.contains('\0') || crate::data::records::json_holds_nul(v)))
        .map(|(k, _)| k.replace('\0', "\\u0000"));
    let message = match &field {
        Some(field) => format!("field '{field}' holds a NUL character (\\u0000), which no text may hold"),
        None => "the body holds a NUL character (\\u0000), which no text may hold".to_owned(),
    };
    let refused = ApiError::BadRequest { message, field, code: Some(codes::INVALID_VALUE) };
    match index {
        Some(index) => ApiError::AtIndex { index, inner: Box::new(refused) },
        None => refused,
    }
}

/// The query string as ordered key/value pairs (repeated keys kept).
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        // No stored text holds NUL (PostgreSQL's cannot), and PostgreSQL refuses it in a
        // parameter: refused here alike for both backends.
        if pairs.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
            return Err(ApiError::bad_input(codes::INVALID_VALUE, "the query string holds a NUL character (%00)"));
        }
        Ok(QueryPairs(pairs))
    }
}

/// The query string as ordered key/value pairs, each key at most once: for endpoints whose
/// parameters are single settings (storage), where a repeat (`?upsert=true&upsert=false`)
/// could only be read by guessing which one was meant (400).
pub struct UniquePairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for UniquePairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let QueryPairs(pairs) = QueryPairs::from_request_parts(parts, state).await?;
        let mut seen = std::collections::HashSet::with_capacity(pairs.len());
        if let Some((key, _)) = pairs.iter().find(|(key, _)| !seen.insert(key.as_str())) {
            let shown = crate::files::names::truncate(key, 64);
            return Err(ApiError::bad_field(key, format!("the query parameter '{shown}' is given more than once")));
        }
        Ok(UniquePairs(pairs))
    }
}

/// Path parameters, with a JSON 400 when they cannot be decoded.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|rejection| ApiError::bad_request(format!("invalid path: {}", rejection.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_credentials;

    #[test]
    fn an_escaped_nul_is_found_and_an_escaped_backslash_is_not_one() {
        use super::escapes_nul;
        assert!(escapes_nul(br#"{"a": "x\u0000"}"#));
        assert!(escapes_nul(br#"{"a\u0000": 1}"#));
        assert!(escapes_nul(br#"["\\\u0000"]"#), "an escaped backslash, then NUL");
        assert!(!escapes_nul(br#"{"a": "\\u0000"}"#), "a backslash, then the text u0000");
        assert!(escapes_nul(br#"{"a": "\u00001"}"#), "NUL, then a 1");
        assert!(!escapes_nul(br#"{"a": "\u0001"}"#));
        assert!(!escapes_nul(br#""\"#), "a lone trailing backslash");
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(bearer_credentials(header), Some("abc"), "{header}");
        }
        for header in ["Basic abc", "Bearerabc", "Bearer", "", "Token abc"] {
            assert_eq!(bearer_credentials(header), None, "{header}");
        }
    }
}
