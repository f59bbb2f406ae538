//! Issuing and checking bearer tokens.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::Role;
use crate::storage::{Database, StorageError, tokens as token_store};

/// Prefix that makes petal tokens recognisable in secret scanners and config files.
pub(super) const TOKEN_PREFIX: &str = "petal_";

/// A token as it is handed out: the secret exists only in this value and in the reply.
#[derive(Debug)]
pub struct IssuedToken {
    pub record: token_store::TokenRecord,
    pub secret: String,
}

/// The authenticated party of a request, as the audit trail names it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None` when authentication is disabled for a local demo.
    pub token_id: Option<String>,
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// The stand-in caller used when `--auth disabled` is in force.
    pub fn unauthenticated_admin() -> Self {
        Caller { token_id: None, name: "auth-disabled".to_owned(), role: Role::Admin }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not known")]
    Unknown,
    #[error("the token was revoked")]
    Revoked,
    #[error("the token expired")]
    Expired,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// SHA-256 of the secret, hex encoded: what the database keeps.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(crate) fn new_secret() -> String {
    format!("{TOKEN_PREFIX}{}", random_hex())
}

/// 256 random bits, hex encoded.
pub(super) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Creates a token with a fresh 256-bit secret and stores its hash.
pub async fn issue_token(
    db: &Database,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    created_by: &str,
) -> Result<IssuedToken, StorageError> {
    let secret = new_secret();
    let record = token_store::insert(
        db,
        &token_store::NewToken { name, role, token_hash: &hash_secret(&secret), created_by, expires_at },
    )
    .await?;
    Ok(IssuedToken { record, secret })
}

/// Looks a presented secret up and says who it belongs to, or why it does not count.
pub async fn authenticate(db: &Database, secret: &str) -> Result<Caller, TokenError> {
    let record = token_store::find_by_hash(db, &hash_secret(secret)).await?.ok_or(TokenError::Unknown)?;
    caller_of(db, record).await
}

/// The caller a token record stands for, if it still counts (not revoked, not expired).
pub(super) async fn caller_of(db: &Database, record: token_store::TokenRecord) -> Result<Caller, TokenError> {
    let now = Utc::now();
    if record.revoked_at.is_some() {
        return Err(TokenError::Revoked);
    }
    if record.expires_at.is_some_and(|at| at <= now) {
        return Err(TokenError::Expired);
    }
    // Recording every use would turn each read into a write; a minute's precision is enough.
    if record.last_used_at.is_none_or(|at| now - at > chrono::Duration::seconds(60)) {
        token_store::touch(db, &record.id, now).await?;
    }
    Ok(Caller { token_id: Some(record.id), name: record.name, role: record.role })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }
}
