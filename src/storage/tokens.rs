//! The `api_tokens` table: hashed bearer tokens with a role, expiry and revocation.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Database, StorageError, execute, with_pool};
use crate::domain::Role;

/// A token as stored: never the secret, only facts about it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, FromRow)]
struct TokenRow {
    id: String,
    name: String,
    role: String,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StorageError;

    fn try_from(row: TokenRow) -> Result<Self, Self::Error> {
        let role = row.role.parse().map_err(|e| StorageError::Corrupt(format!("api_tokens.role: {e}")))?;
        Ok(TokenRecord {
            id: row.id,
            name: row.name,
            role,
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}

/// `SELECT` of every column but the hash, followed by the rest of the statement.
macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, role, created_by, created_at, expires_at, last_used_at, revoked_at FROM api_tokens ",
            $rest
        )
    };
}

/// What a new row needs; the id and creation time are assigned here.
#[derive(Debug)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub role: Role,
    pub token_hash: &'a str,
    pub created_by: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert(db: &Database, token: &NewToken<'_>) -> Result<TokenRecord, StorageError> {
    let record = TokenRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: token.name.to_owned(),
        role: token.role,
        created_by: token.created_by.to_owned(),
        created_at: Utc::now(),
        expires_at: token.expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    execute!(
        db,
        "INSERT INTO api_tokens (id, name, role, token_hash, created_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &record.id,
        &record.name,
        record.role.as_str(),
        token.token_hash,
        &record.created_by,
        record.created_at,
        record.expires_at
    )?;
    Ok(record)
}

pub async fn find_by_hash(db: &Database, token_hash: &str) -> Result<Option<TokenRecord>, StorageError> {
    let sql = select_tokens!("WHERE token_hash = $1");
    let row: Option<TokenRow> = with_pool!(db, |pool| sqlx::query_as(sql).bind(token_hash).fetch_optional(pool).await)?;
    row.map(TokenRecord::try_from).transpose()
}

pub async fn find_by_id(db: &Database, id: &str) -> Result<Option<TokenRecord>, StorageError> {
    let sql = select_tokens!("WHERE id = $1");
    let row: Option<TokenRow> = with_pool!(db, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
    row.map(TokenRecord::try_from).transpose()
}

pub async fn list(db: &Database) -> Result<Vec<TokenRecord>, StorageError> {
    let sql = select_tokens!("ORDER BY created_at, id");
    let rows: Vec<TokenRow> = with_pool!(db, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
    rows.into_iter().map(TokenRecord::try_from).collect()
}

/// Finds a token by id, or else by name when exactly one token has that name.
pub async fn find_by_id_or_name(db: &Database, key: &str) -> Result<Vec<TokenRecord>, StorageError> {
    let sql = select_tokens!("WHERE id = $1 OR name = $1 ORDER BY created_at");
    let rows: Vec<TokenRow> = with_pool!(db, |pool| sqlx::query_as(sql).bind(key).fetch_all(pool).await)?;
    rows.into_iter().map(TokenRecord::try_from).collect()
}

/// Marks a token revoked. Returns false when no unrevoked token has this id.
pub async fn revoke(db: &Database, id: &str, at: DateTime<Utc>) -> Result<bool, StorageError> {
    let result = execute!(db, "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", id, at)?;
    Ok(result == 1)
}

pub async fn touch(db: &Database, id: &str, at: DateTime<Utc>) -> Result<(), StorageError> {
    execute!(db, "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1", id, at)?;
    Ok(())
}

/// Admin tokens that are neither revoked nor expired.
pub async fn count_active_admins(db: &Database) -> Result<usize, StorageError> {
    let expiries: Vec<Option<DateTime<Utc>>> =
        with_pool!(db, |pool| sqlx::query_scalar(ADMIN_EXPIRIES).fetch_all(pool).await)?;
    Ok(count_unexpired(&expiries, Utc::now()))
}

/// Expiry of every unrevoked admin token; expiry is compared in Rust because SQLite keeps
/// timestamps as text.
const ADMIN_EXPIRIES: &str = "SELECT expires_at FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL";

fn count_unexpired(expiries: &[Option<DateTime<Utc>>], now: DateTime<Utc>) -> usize {
    expiries.iter().filter(|e| e.is_none_or(|at| at > now)).count()
}

/// Inserts an admin token with `token_hash` unless an active admin token exists, under a
/// lock that makes concurrent callers (replicas starting together) take turns.
/// Returns whether the token was inserted.
pub async fn insert_admin_if_none(db: &Database, name: &str, token_hash: &str) -> Result<bool, StorageError> {
    /// Arbitrary constant naming petal's admin-bootstrap advisory lock on PostgreSQL.
    const ADMIN_BOOTSTRAP_LOCK: i64 = 0x7065_7461_6c01;
    let now = Utc::now();
    let id = uuid::Uuid::new_v4().to_string();
    // The same check-and-insert inside either engine's locked transaction.
    macro_rules! insert_unless_active {
        ($tx:ident) => {{
            let expiries: Vec<Option<DateTime<Utc>>> = sqlx::query_scalar(ADMIN_EXPIRIES).fetch_all(&mut *$tx).await?;
            let none_active = count_unexpired(&expiries, now) == 0;
            if none_active {
                sqlx::query(
                    "INSERT INTO api_tokens (id, name, role, token_hash, created_by, created_at)
                     VALUES ($1, $2, 'admin', $3, 'petal', $4)",
                )
                .bind(&id)
                .bind(name)
                .bind(token_hash)
                .bind(now)
                .execute(&mut *$tx)
                .await?;
            }
            $tx.commit().await?;
            none_active
        }};
    }
    let inserted = match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ADMIN_BOOTSTRAP_LOCK).execute(&mut *tx).await?;
            insert_unless_active!(tx)
        }
        Database::Sqlite(pool) => {
            // IMMEDIATE takes the write lock up front, so two processes cannot both see "none".
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            insert_unless_active!(tx)
        }
    };
    Ok(inserted)
}
