//! The `sessions` table: web-page sessions, each tied to the token that signed in. Only the
//! SHA-256 of a session id is stored, as for tokens.

use sqlx::FromRow;

use super::{Database, StorageError, execute, with_pool};

/// A stored session.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRecord {
    pub token_id: String,
    pub csrf_token: String,
    pub expires_ms: i64,
}

/// Stores a session.
pub async fn insert(
    db: &Database,
    id_hash: &str,
    token_id: &str,
    csrf_token: &str,
    created_ms: i64,
    expires_ms: i64,
) -> Result<(), StorageError> {
    let sql =
        "INSERT INTO sessions (id_hash, token_id, csrf_token, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)";
    execute!(db, sql, id_hash, token_id, csrf_token, created_ms, expires_ms)?;
    Ok(())
}

pub async fn find(db: &Database, id_hash: &str) -> Result<Option<SessionRecord>, StorageError> {
    let sql = "SELECT token_id, csrf_token, expires_ms FROM sessions WHERE id_hash = $1";
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(id_hash).fetch_optional(pool).await)?)
}

/// Ends a session; also removes every expired one.
pub async fn delete(db: &Database, id_hash: &str, now_ms: i64) -> Result<(), StorageError> {
    let sql = "DELETE FROM sessions WHERE id_hash = $1 OR expires_ms <= $2";
    execute!(db, sql, id_hash, now_ms)?;
    Ok(())
}
