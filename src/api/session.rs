//! `/api/v1/session`: the web page's sign-in and sign-out. Signing in with a token sets
//! the `petal_session` cookie (HttpOnly, SameSite=Strict, Secure unless configured off)
//! and answers the CSRF token the page repeats in `X-CSRF-Token` with every change.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::extract::{Actor, Json};
use super::{ApiError, AppState};
use crate::auth;
use crate::domain::Role;
use crate::storage::audit::{self, NewAuditEvent, Outcome};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "petal_session";
/// Header that carries the session's CSRF token on changes.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// A petal token (as for `Authorization: Bearer`).
    token: String,
}

#[derive(Debug, Serialize)]
pub struct SessionInfo {
    name: String,
    role: Role,
    /// Repeat in `X-CSRF-Token` with every POST or DELETE made with the session cookie.
    csrf_token: String,
    expires_ms: i64,
}

fn cookie(state: &AppState, value: &str, max_age_seconds: i64) -> Result<HeaderValue, ApiError> {
    let secure = if state.sessions.secure_cookies { "; Secure" } else { "" };
    let text =
        format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}");
    HeaderValue::from_str(&text).map_err(|e| ApiError::Internal(anyhow::anyhow!("session cookie: {e}")))
}

/// The session id the request's cookies carry, if any.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

pub async fn sign_in(State(state): State<AppState>, Json(body): Json<SignIn>) -> Result<Response, ApiError> {
    let session = match auth::start_session(&state.db, body.token.trim(), state.sessions.lifetime).await {
        Ok(session) => session,
        Err(auth::TokenError::Storage(err)) => return Err(ApiError::Storage(err)),
        Err(err) => {
            let event = NewAuditEvent {
                actor: "unknown",
                action: "session.create",
                resource: "/api/v1/session",
                patient_key: None,
                outcome: Outcome::Denied,
                request_id: None,
                detail: None,
            };
            audit::append(&state.db, &event).await?;
            return Err(ApiError::from(err));
        }
    };
    let event = NewAuditEvent {
        actor: &session.caller.name,
        action: "session.create",
        resource: "/api/v1/session",
        patient_key: None,
        outcome: Outcome::Success,
        request_id: None,
        detail: None,
    };
    audit::append(&state.db, &event).await?;
    let max_age = (session.expires_ms - chrono::Utc::now().timestamp_millis()).max(0) / 1000;
    let body = SessionInfo {
        name: session.caller.name.clone(),
        role: session.caller.role,
        csrf_token: session.csrf_token.clone(),
        expires_ms: session.expires_ms,
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie(&state, &session.id, max_age)?);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The caller's session, for a page opened in a new tab: the cookie came along, the CSRF
/// token (kept in the tab's sessionStorage) did not. Only same-origin script can read the
/// answer, so handing the token out here does not weaken it. Bearer callers get no token.
#[derive(Debug, Serialize)]
pub struct CurrentSession {
    name: String,
    role: Role,
    csrf_token: Option<String>,
}

pub async fn current(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<axum::Json<CurrentSession>, ApiError> {
    let csrf_token = match session_id(&headers) {
        Some(id) if !headers.contains_key(header::AUTHORIZATION) => Some(auth::session_caller(&state.db, id).await?.1),
        _ => None,
    };
    Ok(axum::Json(CurrentSession { name: actor.caller.name, role: actor.caller.role, csrf_token }))
}

pub async fn sign_out(State(state): State<AppState>, actor: Actor, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session_id(&headers) {
        auth::end_session(&state.db, id).await?;
    }
    actor.audit(&state.db, "session.delete", "/api/v1/session", None, Outcome::Success).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}
