//! The `jobs` table: a durable queue that any number of workers share.
//!
//! A worker claims the most urgent ready job in one statement and holds it under a lease
//! that it renews by heartbeat. A job whose lease runs out (its worker died) is put back
//! by the orphan sweep and runs again, up to its attempt limit. PostgreSQL claims with
//! `FOR UPDATE SKIP LOCKED`, so workers never wait on each other; SQLite serialises writers,
//! so the same single-statement claim is safe there without it.

use chrono::Utc;
use sqlx::FromRow;

use super::{Database, StorageError, execute, with_pool};
use crate::domain::{JobId, JobState};

/// Channel on which PostgreSQL announces new jobs (workers also poll).
pub const NOTIFY_CHANNEL: &str = "petal_jobs";

/// Wake-ups for an idle worker when a job is enqueued: PostgreSQL's NOTIFY on
/// [`NOTIFY_CHANNEL`]. SQLite has none (and a failed LISTEN leaves none), so the worker
/// relies on polling there.
pub struct JobNotifications(Option<sqlx::postgres::PgListener>);

impl JobNotifications {
    pub async fn listen(db: &Database) -> Self {
        let listener = match db {
            Database::Postgres(pool) => match sqlx::postgres::PgListener::connect_with(pool).await {
                Ok(mut listener) => listener.listen(NOTIFY_CHANNEL).await.ok().map(|()| listener),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot LISTEN for new jobs; polling only");
                    None
                }
            },
            Database::Sqlite(_) => None,
        };
        Self(listener)
    }

    /// Returns at the next notification; never, where there are none.
    pub async fn next(&mut self) {
        match self.0.as_mut() {
            Some(listener) => {
                let _ = listener.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub priority: i32,
    pub payload: String,
    pub dedupe_key: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_ms: Option<i64>,
    /// The worker that ran the latest attempt (kept after the job ends).
    pub ran_by: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub priority: i32,
    pub payload: &'a serde_json::Value,
    /// When set, the job is not added while another queued or running job has this key.
    pub dedupe_key: Option<&'a str>,
    pub max_attempts: i32,
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

macro_rules! select_jobs {
    ($rest:literal) => {
        concat!(
            "SELECT id, kind, priority, payload, dedupe_key, state, attempts, max_attempts, run_after_ms, lease_owner,
                    lease_expires_ms, ran_by, created_ms, started_ms, finished_ms, last_error FROM jobs ",
            $rest
        )
    };
}

/// The statement that adds a job; nothing is added while an active job holds its dedupe key.
pub(super) const INSERT_SQL: &str =
    "INSERT INTO jobs (id, kind, priority, payload, dedupe_key, state, max_attempts, run_after_ms, created_ms)
     VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $7)
     ON CONFLICT DO NOTHING";

/// Binds (id, job, now) to [`INSERT_SQL`] in its placeholder order, for a pool or a transaction.
macro_rules! bind_new_job {
    ($query:expr, $id:expr, $job:expr, $now:expr) => {
        $query
            .bind($id)
            .bind($job.kind)
            .bind($job.priority)
            .bind($job.payload.to_string())
            .bind($job.dedupe_key)
            .bind($job.max_attempts)
            .bind($now)
    };
}
pub(super) use bind_new_job;

/// Wakes listening workers at once (PostgreSQL); they poll as well, so a lost notification only delays.
pub(super) async fn notify(db: &Database, kind: &str) -> Result<(), StorageError> {
    if let Database::Postgres(pool) = db {
        sqlx::query("SELECT pg_notify($1, $2)").bind(NOTIFY_CHANNEL).bind(kind).execute(pool).await?;
    }
    Ok(())
}

/// Adds a job; returns its id, or `None` when an active job already has its dedupe key.
pub async fn enqueue(db: &Database, job: &NewJob<'_>) -> Result<Option<JobId>, StorageError> {
    let id = JobId::generate();
    let now = now_ms();
    let inserted = with_pool!(db, |pool| {
        bind_new_job!(sqlx::query(INSERT_SQL), &id, job, now).execute(pool).await.map(|r| r.rows_affected())
    })?;
    if inserted == 0 {
        return Ok(None);
    }
    notify(db, job.kind).await?;
    Ok(Some(id))
}

/// Claims the most urgent ready job of one of `kinds` for `owner`, leased for `lease_ms`.
pub async fn claim(db: &Database, owner: &str, kinds: &[&str], lease_ms: i64) -> Result<Option<Job>, StorageError> {
    let now = now_ms();
    let kinds = serde_json::to_string(kinds).unwrap_or_else(|_| "[]".to_owned());
    // One statement: pick the most urgent ready job and lease it. Only the kind filter
    // (JSON array of kinds) and PostgreSQL's row lock differ between the engines.
    macro_rules! claim_sql {
        ($kinds:literal, $lock:literal) => {
            concat!(
                "UPDATE jobs SET state = 'running', lease_owner = $1, ran_by = $1, lease_expires_ms = $2 + $3,
                        attempts = attempts + 1, started_ms = COALESCE(started_ms, $2)
                 WHERE id = (SELECT id FROM jobs
                             WHERE state = 'queued' AND run_after_ms <= $2 AND kind IN (",
                $kinds,
                ")
                             ORDER BY priority, run_after_ms, created_ms
                             LIMIT 1 ",
                $lock,
                ")
                 RETURNING id, kind, priority, payload, dedupe_key, state, attempts, max_attempts, run_after_ms,
                           lease_owner, lease_expires_ms, ran_by, created_ms, started_ms, finished_ms, last_error"
            )
        };
    }
    let sql = match db {
        Database::Postgres(_) => claim_sql!("SELECT jsonb_array_elements_text($4::jsonb)", "FOR UPDATE SKIP LOCKED"),
        Database::Sqlite(_) => claim_sql!("SELECT value FROM json_each($4)", ""),
    };
    let job = with_pool!(db, |pool| {
        sqlx::query_as(sql).bind(owner).bind(now).bind(lease_ms).bind(&kinds).fetch_optional(pool).await
    })?;
    Ok(job)
}

/// Extends the lease of a job this owner still holds; false when the lease was lost.
pub async fn heartbeat(db: &Database, id: &JobId, owner: &str, lease_ms: i64) -> Result<bool, StorageError> {
    let sql = "UPDATE jobs SET lease_expires_ms = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
    let updated = execute!(db, sql, id, owner, now_ms() + lease_ms)?;
    Ok(updated == 1)
}

/// Records success of a job this owner holds.
pub async fn succeed(db: &Database, id: &JobId, owner: &str) -> Result<bool, StorageError> {
    let sql = "UPDATE jobs SET state = 'succeeded', finished_ms = $3, lease_owner = NULL, lease_expires_ms = NULL
               WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
    let updated = execute!(db, sql, id, owner, now_ms())?;
    Ok(updated == 1)
}

/// Records a failure: the job is retried after `retry_in_ms` while attempts remain, else failed.
pub async fn fail(db: &Database, id: &JobId, owner: &str, error: &str, retry_in_ms: i64) -> Result<bool, StorageError> {
    let now = now_ms();
    let sql = "UPDATE jobs SET
                 state = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
                 run_after_ms = $3 + $4,
                 finished_ms = CASE WHEN attempts < max_attempts THEN NULL ELSE $3 END,
                 last_error = $5, lease_owner = NULL, lease_expires_ms = NULL
               WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
    let updated = execute!(db, sql, id, owner, now, retry_in_ms, error)?;
    Ok(updated == 1)
}

/// Records a failure that retrying cannot fix: the job fails now, whatever attempts remain.
pub async fn give_up(db: &Database, id: &JobId, owner: &str, error: &str) -> Result<bool, StorageError> {
    let sql = "UPDATE jobs SET state = 'failed', finished_ms = $3, last_error = $4,
                      lease_owner = NULL, lease_expires_ms = NULL
               WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
    let updated = execute!(db, sql, id, owner, now_ms(), error)?;
    Ok(updated == 1)
}

/// Puts back jobs whose lease expired (their worker died): queued again while attempts
/// remain, failed otherwise. Returns how many were swept.
pub async fn sweep_orphans(db: &Database) -> Result<u64, StorageError> {
    let now = now_ms();
    let sql = "UPDATE jobs SET
                 state = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
                 finished_ms = CASE WHEN attempts < max_attempts THEN NULL ELSE $1 END,
                 last_error = 'the worker stopped renewing its lease', lease_owner = NULL, lease_expires_ms = NULL
               WHERE state = 'running' AND lease_expires_ms < $1";
    Ok(execute!(db, sql, now)?)
}

/// Jobs, newest first, optionally of one state and kind.
pub async fn list(
    db: &Database,
    state: Option<JobState>,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<Job>, StorageError> {
    let sql = select_jobs!(
        "WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR kind = $2) ORDER BY created_ms DESC, id LIMIT $3"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(sql)
        .bind(state.map(JobState::as_str))
        .bind(kind)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

pub async fn get(db: &Database, id: &JobId) -> Result<Option<Job>, StorageError> {
    let sql = select_jobs!("WHERE id = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
}

/// The queued or running job holding `dedupe_key`, if any.
pub async fn active_with_key(db: &Database, dedupe_key: &str) -> Result<Option<Job>, StorageError> {
    let sql = select_jobs!("WHERE dedupe_key = $1 AND state IN ('queued', 'running')");
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(dedupe_key).fetch_optional(pool).await)?)
}

/// Number of jobs per (kind, state), for the metrics.
pub async fn counts(db: &Database) -> Result<Vec<(String, String, i64)>, StorageError> {
    let sql = "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY kind, state";
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).fetch_all(pool).await)?)
}
