//! The `series_forwards` table: where each series' delivery to each destination stands
//! (queued, sending, sent, failed), for the series API, the web page and metrics. The
//! forward jobs themselves are on the shared queue ([`super::jobs`]).

use sqlx::FromRow;

use super::jobs::now_ms;
use super::{Database, StorageError, execute, with_pool};
use crate::domain::ForwardState;

/// One series' delivery to one destination.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct SeriesForward {
    pub series_uid: String,
    pub destination: String,
    #[sqlx(try_from = "String")]
    pub state: ForwardState,
    /// Sending attempts so far (retries of transient failures included).
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_ms: Option<i64>,
    pub updated_ms: i64,
}

/// Marks the series as waiting to be sent to `destination` (again): attempts restart.
pub async fn queue(db: &Database, series_uid: &str, destination: &str) -> Result<(), StorageError> {
    execute!(
        db,
        "INSERT INTO series_forwards (series_uid, destination, state, attempts, updated_ms)
              VALUES ($1, $2, 'queued', 0, $3)
         ON CONFLICT (series_uid, destination)
         DO UPDATE SET state = 'queued', attempts = 0, last_error = NULL, sent_ms = NULL, updated_ms = $3",
        series_uid,
        destination,
        now_ms()
    )?;
    Ok(())
}

/// Records the start of an attempt; `false` when the destination (and so the row) is gone.
pub async fn mark_sending(db: &Database, series_uid: &str, destination: &str) -> Result<bool, StorageError> {
    let updated = execute!(
        db,
        "UPDATE series_forwards SET state = 'sending', attempts = attempts + 1, updated_ms = $3
          WHERE series_uid = $1 AND destination = $2",
        series_uid,
        destination,
        now_ms()
    )?;
    Ok(updated == 1)
}

pub async fn mark_sent(db: &Database, series_uid: &str, destination: &str) -> Result<(), StorageError> {
    let now = now_ms();
    execute!(
        db,
        "UPDATE series_forwards SET state = 'sent', last_error = NULL, sent_ms = $3, updated_ms = $3
          WHERE series_uid = $1 AND destination = $2",
        series_uid,
        destination,
        now
    )?;
    Ok(())
}

/// Records a failed attempt: `queued` again when it will be retried, else `failed`.
pub async fn mark_unsent(
    db: &Database,
    series_uid: &str,
    destination: &str,
    error: &str,
    retried: bool,
) -> Result<(), StorageError> {
    let state = if retried { ForwardState::Queued } else { ForwardState::Failed };
    execute!(
        db,
        "UPDATE series_forwards SET state = $3, last_error = $4, updated_ms = $5
          WHERE series_uid = $1 AND destination = $2",
        series_uid,
        destination,
        state.as_str(),
        error,
        now_ms()
    )?;
    Ok(())
}

/// The forward states of these series, by series then destination.
pub async fn of_series(db: &Database, series_uids: &[&str]) -> Result<Vec<SeriesForward>, StorageError> {
    let mut found = Vec::new();
    for series_uid in series_uids {
        let rows: Vec<SeriesForward> = with_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT series_uid, destination, state, attempts, last_error, sent_ms, updated_ms
                   FROM series_forwards WHERE series_uid = $1 ORDER BY destination",
            )
            .bind(series_uid)
            .fetch_all(pool)
            .await
        })?;
        found.extend(rows);
    }
    Ok(found)
}
