//! The one error type of the HTTP API, and its mapping to status codes and
//! `{"error": "..."}` bodies. Every handler returns `Result<_, ApiError>`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::data::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input; `field` names the offending field when there is one.
    #[error("{message}")]
    BadRequest { message: String, field: Option<String> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UriTooLong(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
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
        ApiError::BadRequest { message: message.into(), field: None }
    }

    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), field: Some(field.to_owned()) }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::NotFound(message.into())
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::AtIndex { inner, .. } => inner.status(),
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Locked { .. } => StatusCode::LOCKED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::UniqueViolation(msg) => ApiError::Conflict(msg),
            DbError::ForeignKeyViolation(msg) => ApiError::Conflict(msg),
            DbError::NotNullViolation(msg) | DbError::CheckViolation(msg) => ApiError::bad_request(msg),
            DbError::InvalidValue(msg) => ApiError::bad_request(msg),
            DbError::NoRowChanged(msg) => ApiError::NotFound(msg),
            DbError::InStatement { index, source } => ApiError::AtIndex { index, inner: Box::new((*source).into()) },
            DbError::Other(msg) | DbError::StalePlan(msg) => ApiError::Internal(msg),
        }
    }
}

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
            ApiError::BadRequest { message, field: Some(field) } => {
                serde_json::json!({ "error": message, "field": field })
            }
            other => serde_json::json!({ "error": other.to_string() }),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The most characters of an internal error's detail that reach the log.
const MAX_LOGGED_DETAIL: usize = 300;
