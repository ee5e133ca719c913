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
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The account is locked after too many failed sign-ins.
    #[error("{message}")]
    Locked { message: String, retry_after_secs: u64 },
    #[error("Rate limit exceeded. Try again later.")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
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
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
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
            DbError::Other(msg) => ApiError::Internal(msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "Internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let body = match &self {
            ApiError::BadRequest { field: Some(field), .. } => {
                serde_json::json!({ "error": message, "field": field })
            }
            _ => serde_json::json!({ "error": message }),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after_secs } | ApiError::Locked { retry_after_secs, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
