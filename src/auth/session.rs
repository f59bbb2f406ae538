//! Web-page sessions: a token, presented once at sign-in, becomes a session id kept in an
//! HttpOnly cookie, so the page's images load without bearer headers. A session acts as its
//! token (same name and role, ended with it) and carries a CSRF token that every change
//! made through it must repeat in a header, which another site's page cannot read.

use std::time::Duration;

use super::token::{caller_of, random_hex};
use super::{Caller, TokenError, hash_secret};
use crate::storage::{Database, sessions, tokens as token_store};

/// A session just started: the id (for the cookie) and the CSRF token (for the page).
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
    pub expires_ms: i64,
    pub caller: Caller,
}

/// Starts a session for the holder of `secret`, lasting `lifetime` (or less, when the
/// token expires sooner).
pub async fn start_session(db: &Database, secret: &str, lifetime: Duration) -> Result<NewSession, TokenError> {
    let token = token_store::find_by_hash(db, &hash_secret(secret)).await?.ok_or(TokenError::Unknown)?;
    let (token_id, token_expiry) = (token.id.clone(), token.expires_at);
    let caller = caller_of(db, token).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut expires_ms = now.saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX));
    if let Some(at) = token_expiry {
        expires_ms = expires_ms.min(at.timestamp_millis());
    }
    let (id, csrf_token) = (random_hex(), random_hex());
    sessions::insert(db, &hash_secret(&id), &token_id, &csrf_token, now, expires_ms).await?;
    Ok(NewSession { id, csrf_token, expires_ms, caller })
}

/// The caller of a session and its CSRF token, if the session and its token still count.
pub async fn session_caller(db: &Database, session_id: &str) -> Result<(Caller, String), TokenError> {
    let record = sessions::find(db, &hash_secret(session_id)).await?.ok_or(TokenError::Unknown)?;
    if record.expires_ms <= chrono::Utc::now().timestamp_millis() {
        return Err(TokenError::Expired);
    }
    let token = token_store::find_by_id(db, &record.token_id).await?.ok_or(TokenError::Unknown)?;
    Ok((caller_of(db, token).await?, record.csrf_token))
}

/// Ends a session (and sweeps expired ones).
pub async fn end_session(db: &Database, session_id: &str) -> Result<(), TokenError> {
    sessions::delete(db, &hash_secret(session_id), chrono::Utc::now().timestamp_millis()).await?;
    Ok(())
}
