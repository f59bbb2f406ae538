//! The one place where failures become HTTP responses.
//!
//! Handlers return [`ApiError`]; its status code and machine-readable code are decided
//! here. [`render_errors`] then gives every error response, including those produced by
//! axum itself (unknown route, wrong method, body too large, timeout, bad JSON), the same
//! body: `{"error": {"code", "message", "request_id"}}`. DICOMweb responses that carry
//! their own DICOM JSON body are left as they are.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::TokenError;
use crate::domain::RoundId;
use crate::storage::StorageError;

use super::observability::REQUEST_ID_HEADER;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    MissingToken,
    #[error("the bearer token is not valid: {0}")]
    InvalidToken(&'static str),
    #[error("a `{role}` token may not use this endpoint; it needs one of: {allowed}")]
    Forbidden { role: String, allowed: String },
    #[error("changes made with the session cookie must repeat the session's CSRF token in X-CSRF-Token")]
    CsrfMissing,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "this patient already has an active round ({0}): wait for it, or cancel it with POST /api/v1/rounds/{0}/cancel"
    )]
    RoundActive(RoundId),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{}", storage_message(.0))]
    Storage(#[from] StorageError),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Unknown => ApiError::InvalidToken("it is not known"),
            TokenError::Revoked => ApiError::InvalidToken("it was revoked"),
            TokenError::Expired => ApiError::InvalidToken("it expired"),
            TokenError::Storage(e) => ApiError::Storage(e),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::CsrfMissing => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) | ApiError::RoundActive(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Storage(error) if error.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Storage(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "missing_token",
            ApiError::InvalidToken(_) => "invalid_token",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::CsrfMissing => "csrf_token_missing",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Conflict(_) => "conflict",
            ApiError::RoundActive(_) => "round_active",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::NotAcceptable(_) => "not_acceptable",
            ApiError::Storage(error) if error.is_unavailable() => "unavailable",
            ApiError::Storage(_) | ApiError::Internal(_) => "internal",
        }
    }
}

/// What a client is told of a storage error: retry, or nothing more (the cause is logged).
fn storage_message(error: &StorageError) -> &'static str {
    if error.is_unavailable() { "the database is unreachable; retry later" } else { "storage failure" }
}

/// Seconds a sender is asked to wait before retrying while the database is unreachable.
const RETRY_AFTER_SECONDS: &str = "10";

/// Code and message of an error response, handed from `IntoResponse` to [`render_errors`],
/// which knows the request id.
#[derive(Debug, Clone)]
struct ErrorDetails {
    code: &'static str,
    message: String,
    /// The round that is in the way (409 `round_active`).
    active_round_id: Option<RoundId>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The cause goes to the log only; the client gets the request id to quote.
            tracing::error!(error = %error_chain(&self), "request failed");
        }
        let mut response = status.into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // The database is unreachable: senders (a PACS, a modality) retry after this.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        if matches!(self, ApiError::MissingToken | ApiError::InvalidToken(_)) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"petal\""));
        }
        let active_round_id = match self {
            ApiError::RoundActive(id) => Some(id),
            _ => None,
        };
        response.extensions_mut().insert(ErrorDetails {
            code: self.code(),
            message: self.to_string(),
            active_round_id,
        });
        response
    }
}

/// The error and its sources, joined; sqlx and object_store errors carry no patient data.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    active_round_id: Option<RoundId>,
}

/// Largest plain-text body of a framework error that is carried into the JSON message.
const MAX_PLAIN_MESSAGE: usize = 4096;

/// Middleware: gives every error response the JSON error body with the request id.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id =
        request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let details = response.extensions().get::<ErrorDetails>().cloned();
    let details = match details {
        Some(details) => details,
        None if is_plain_or_empty(&response) => {
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, MAX_PLAIN_MESSAGE).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            let message = if text.is_empty() { default_message(status) } else { text };
            let details = ErrorDetails { code: code_for_status(status), message, active_round_id: None };
            return with_json_body(Response::from_parts(parts, Body::empty()), &details, &request_id);
        }
        // A body of its own kind (e.g. DICOM JSON from STOW-RS): keep it.
        None => return response,
    };
    with_json_body(response, &details, &request_id)
}

fn is_plain_or_empty(response: &Response) -> bool {
    match response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(ct) => ct.starts_with("text/plain"),
    }
}

fn with_json_body(response: Response, details: &ErrorDetails, request_id: &str) -> Response {
    let body = ErrorBody {
        error: ErrorFields {
            code: details.code,
            message: &details.message,
            request_id,
            active_round_id: details.active_round_id,
        },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "missing_token",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "no such route; see openapi.yaml for the API".to_owned(),
        StatusCode::REQUEST_TIMEOUT => "the request took longer than the server's time limit".to_owned(),
        other => other.canonical_reason().unwrap_or("error").to_owned(),
    }
}
