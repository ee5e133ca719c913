//! The one error type of the HTTP API, and its mapping to status codes and
//! `{"error": "..."}` bodies. Every handler returns `Result<_, ApiError>`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Bad input; `field` names the offending field when there is one, `code` what kind of
    /// bad input it is (see [`ApiError::code`]) when that is known.
    #[error("{message}")]
    BadRequest { message: String, field: Option<String>, code: Option<&'static str> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// One object asked for, and not one row to answer with.
    #[error("{0}")]
    NotAcceptable(String),
    /// An `Accept` the server cannot answer in.
    #[error("{0}")]
    UnacceptableMediaType(String),
    /// `Accept-Profile` or `Content-Profile` names a schema that is not served.
    #[error("{0}")]
    UnknownSchema(String),
    #[error("{0}")]
    Conflict(String),
    /// A conflict of another kind than a duplicate key: `code` says which (a foreign key, a
    /// concurrent change to try again after).
    #[error("{message}")]
    ConflictOf { message: String, code: &'static str },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UriTooLong(String),
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A precondition of the protocol is not met (tus: an unsupported `Tus-Resumable`).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The client stopped sending its request body half way (see `--body-idle-timeout-secs`).
    #[error("{0}")]
    RequestTimeout(String),
    /// A `Range` that the file's size cannot satisfy.
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// The account is locked after too many failed sign-ins.
    #[error("{message}")]
    Locked { message: String, retry_after_secs: u64 },
    #[error("Rate limit exceeded. Try again later.")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// The error of one item of a bulk or batch request, with the item's 0-based index.
    #[error("{inner}")]
    AtIndex { index: usize, inner: Box<ApiError> },
    /// A fault of the server. The detail is logged; the client sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), field: None, code: None }
    }

    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), field: Some(field.to_owned()), code: None }
    }

    /// Bad input of a known kind (an SQLSTATE or PostgREST code, see [`ApiError::code`]).
    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), field: None, code: Some(code) }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::NotFound(message.into())
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal(detail.to_string())
    }

    /// The kind of error, as [`codes`] names them.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::AtIndex { inner, .. } => inner.code(),
            ApiError::BadRequest { code, .. } => code.unwrap_or(codes::PARSE),
            ApiError::Unauthorized(_) | ApiError::Forbidden(_) => codes::PRIVILEGE,
            ApiError::NotFound(_) => codes::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => codes::METHOD,
            ApiError::NotAcceptable(_) => codes::SINGULAR,
            ApiError::UnacceptableMediaType(_) => codes::MEDIA_TYPE,
            ApiError::UnknownSchema(_) => codes::SCHEMA,
            ApiError::Conflict(_) => codes::UNIQUE,
            ApiError::ConflictOf { code, .. } => code,
            ApiError::PayloadTooLarge(_) | ApiError::UriTooLong(_) | ApiError::HeadersTooLarge(_) => codes::LIMIT,
            ApiError::RangeNotSatisfiable(_) => codes::RANGE,
            ApiError::UnsupportedMediaType(_) => codes::MEDIA_TYPE,
            ApiError::PreconditionFailed(_) => codes::PARSE,
            ApiError::RequestTimeout(_) => codes::BODY,
            ApiError::Locked { .. } => codes::LOCKED,
            ApiError::TooManyRequests { .. } => codes::RATE_LIMITED,
            ApiError::Unavailable(_) => codes::UNAVAILABLE,
            ApiError::Internal(_) => codes::INTERNAL,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::AtIndex { inner, .. } => inner.status(),
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) | ApiError::UnacceptableMediaType(_) | ApiError::UnknownSchema(_) => {
                StatusCode::NOT_ACCEPTABLE
            }
            ApiError::Conflict(_) | ApiError::ConflictOf { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Locked { .. } => StatusCode::LOCKED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The `code` of an error answer: an SQLSTATE where one fits, else PostgREST's own `PGRST…`
/// code, as PostgREST's clients (postgrest-js, postgrest-py) read them.
pub mod codes {
    /// A query string the parsers cannot read.
    pub const PARSE: &str = "PGRST100";
    /// A request body that is not the JSON expected.
    pub const BODY: &str = "PGRST102";
    /// A column a query names does not exist.
    pub const UNDEFINED_COLUMN: &str = "42703";
    /// A body names a column the table does not have.
    pub const UNKNOWN_BODY_COLUMN: &str = "PGRST204";
    /// No such table (or collection, or record).
    pub const NOT_FOUND: &str = "42P01";
    /// Refused by the access rules or missing credentials.
    pub const PRIVILEGE: &str = "42501";
    pub const UNIQUE: &str = "23505";
    pub const FOREIGN_KEY: &str = "23503";
    /// A concurrent change got in the way (a lost race, a schema change meanwhile): try again.
    pub const TRY_AGAIN: &str = "40001";
    /// One statement would change a row twice (two items of an upsert with one key).
    pub const CARDINALITY: &str = "21000";
    /// `on_conflict` names columns without a unique constraint.
    pub const NO_CONFLICT_TARGET: &str = "42P10";
    pub const NOT_NULL: &str = "23502";
    pub const CHECK: &str = "23514";
    /// A value its column cannot take.
    pub const INVALID_VALUE: &str = "22P02";
    /// numeric_value_out_of_range: a number its column's type cannot hold.
    pub const OUT_OF_RANGE: &str = "22003";
    /// invalid_datetime_format: a date or time that is not one.
    pub const DATETIME_FORMAT: &str = "22007";
    /// A write by filter would change more rows than `Prefer: max-affected` allows.
    pub const MAX_AFFECTED: &str = "PGRST124";
    /// Preferences `Prefer: handling=strict` cannot honour.
    pub const INVALID_PREFERENCE: &str = "PGRST122";
    /// One object was asked for, and the answer is not one row.
    pub const SINGULAR: &str = "PGRST116";
    pub const METHOD: &str = "PGRST117";
    /// feature_not_supported: an operation the table cannot take (a SQLite virtual table's update).
    pub const NOT_SUPPORTED: &str = "0A000";
    pub const MEDIA_TYPE: &str = "PGRST107";
    /// A schema other than the one served (`Accept-Profile`, `Content-Profile`).
    pub const SCHEMA: &str = "PGRST106";
    /// A named limit (URL, body, nesting, sizes) was crossed.
    pub const LIMIT: &str = "54000";
    /// A range that starts past the last row (416).
    pub const RANGE: &str = "PGRST103";
    pub const LOCKED: &str = "55P03";
    pub const RATE_LIMITED: &str = "53400";
    pub const UNAVAILABLE: &str = "57P03";
    pub const INTERNAL: &str = "XX000";
}

/// The `code` of an error answer, carried on the response for the layers that show it (the
/// tables surface answers PostgREST's error fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = self.body();
        let mut response_error = &self;
        if let ApiError::AtIndex { index, inner } = &self {
            body["index"] = (*index).into();
            response_error = inner;
        }
        let mut response = (status, axum::Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(self.code()));
        if let ApiError::TooManyRequests { retry_after_secs } | ApiError::Locked { retry_after_secs, .. } =
            response_error
        {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

impl ApiError {
    /// `{"error": "..."}`, with `field` when one field is at fault.
    fn body(&self) -> serde_json::Value {
        match self {
            ApiError::AtIndex { inner, .. } => inner.body(),
            ApiError::Internal(detail) => {
                // Bounded: a detail must never carry a whole statement or request into the log.
                let detail: String = detail.chars().take(MAX_LOGGED_DETAIL).collect();
                tracing::error!(%detail, "internal error");
                serde_json::json!({ "error": "Internal server error" })
            }
            ApiError::BadRequest { message, field: Some(field), .. } => {
                serde_json::json!({ "error": bounded(message), "field": field })
            }
            other => serde_json::json!({ "error": bounded(&other.to_string()) }),
        }
    }
}

/// A message cut at `MAX_ERROR_MESSAGE_CHARS`.
fn bounded(message: &str) -> String {
    use crate::limits::MAX_ERROR_MESSAGE_CHARS;
    match message.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_owned(),
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The most characters of an internal error's detail that reach the log.
const MAX_LOGGED_DETAIL: usize = 300;
