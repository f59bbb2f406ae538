//! Authentication and role checks, applied per endpoint from the endpoint table.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AuthMode;
use super::session::{CSRF_HEADER, session_id};
use super::{ApiError, AppState};
use crate::auth::{self, Caller};
use crate::domain::Role;

/// State of one endpoint's gate: the app and the roles the endpoint admits.
#[derive(Debug, Clone)]
pub struct Gate {
    pub state: AppState,
    pub roles: &'static [Role],
}

/// Middleware: 401 without a valid bearer token or session cookie, 403 for a role the
/// endpoint does not admit or a change made with the cookie but without the session's CSRF
/// token; otherwise the [`Caller`] is put in the request's extensions for the handler.
pub async fn require_role(State(gate): State<Gate>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let caller = match gate.state.auth {
        AuthMode::Disabled => Caller::unauthenticated_admin(),
        AuthMode::Enabled => {
            match (request.headers().contains_key(header::AUTHORIZATION), session_id(request.headers())) {
                (false, Some(session)) => {
                    let (caller, csrf) = auth::session_caller(&gate.state.db, session).await?;
                    if !is_safe(request.method()) && !csrf_matches(&request, &csrf) {
                        return Err(ApiError::CsrfMissing);
                    }
                    caller
                }
                _ => auth::authenticate(&gate.state.db, bearer_secret(&request)?).await?,
            }
        }
    };
    if !gate.roles.contains(&caller.role) {
        let allowed = gate.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
        return Err(ApiError::Forbidden { role: caller.role.to_string(), allowed });
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request repeats the session's CSRF token (compared in constant time).
fn csrf_matches(request: &Request, expected: &str) -> bool {
    let Some(sent) = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else { return false };
    sent.len() == expected.len() && sent.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn bearer_secret(request: &Request) -> Result<&str, ApiError> {
    let value = request.headers().get(header::AUTHORIZATION).ok_or(ApiError::MissingToken)?;
    let value = value.to_str().map_err(|_| ApiError::InvalidToken("the header is not ASCII"))?;
    let (scheme, secret) = value.split_once(' ').ok_or(ApiError::InvalidToken("expected `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
        return Err(ApiError::InvalidToken("expected `Bearer <token>`"));
    }
    Ok(secret.trim())
}
