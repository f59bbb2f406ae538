//! Extractors shared by handlers.

use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::ApiError;
use super::observability::REQUEST_ID_HEADER;
use crate::auth::Caller;
use crate::domain::PatientKey;
use crate::storage::Database;
use crate::storage::audit::{self, NewAuditEvent, Outcome};

/// The authenticated caller and the request id: everything an audit event needs.
#[derive(Debug, Clone)]
pub struct Actor {
    pub caller: Caller,
    pub request_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route has no role gate but needs a caller")))?;
        let request_id = parts.headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Actor { caller, request_id })
    }
}

impl Actor {
    /// Appends an audit event in this actor's name. Failing to audit fails the request:
    /// patient data is never served unaudited.
    pub async fn audit(
        &self,
        db: &Database,
        action: &str,
        resource: &str,
        patient_key: Option<&PatientKey>,
        outcome: Outcome,
    ) -> Result<(), ApiError> {
        self.audit_detailed(db, AuditedAction { action, resource, patient_key, detail: None }, outcome).await
    }

    /// [`Actor::audit`] for an action whose event also records what it was asked to do.
    pub async fn audit_detailed(
        &self,
        db: &Database,
        AuditedAction { action, resource, patient_key, detail }: AuditedAction<'_>,
        outcome: Outcome,
    ) -> Result<(), ApiError> {
        audit::append(
            db,
            &NewAuditEvent {
                actor: &self.caller.name,
                action,
                resource,
                patient_key,
                outcome,
                request_id: self.request_id.as_deref(),
                detail,
            },
        )
        .await?;
        Ok(())
    }
}

/// What an audit event names: the action, what it acted on, and what it was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct AuditedAction<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub patient_key: Option<&'a PatientKey>,
    pub detail: Option<&'a str>,
}

/// A JSON request body. Rejections (wrong content type, bad syntax, missing fields) become
/// [`ApiError::BadRequest`] with serde's explanation, and NUL characters are refused
/// up front: PostgreSQL cannot store them in text.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::BadRequest("send the body as `Content-Type: application/json`".to_owned()));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(rejection.body_text())
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
        if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
            return Err(ApiError::BadRequest("text fields must not contain NUL characters".to_owned()));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// An optional JSON body (`Option<Json<T>>`): a request without a body and without a
/// Content-Type gives `None`; anything else is read as [`Json`] is.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let headers = request.headers();
        let declared_length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        if !headers.contains_key(header::CONTENT_TYPE) && !chunked && declared_length.unwrap_or(0) == 0 {
            return Ok(None);
        }
        <Json<T> as FromRequest<S>>::from_request(request, state).await.map(Some)
    }
}

/// Middleware: refuses URIs that encode a NUL character (`%00`) in the path or query,
/// which no identifier petal serves can contain and PostgreSQL cannot compare.
pub async fn reject_nul_in_uri(request: Request, next: Next) -> Result<Response, ApiError> {
    let uri = request.uri();
    let has_nul = |part: &str| part.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"%00"));
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return Err(ApiError::BadRequest("the URI must not contain NUL characters (%00)".to_owned()));
    }
    Ok(next.run(request).await)
}

/// Query-string extractor with the same error shape.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}
