//! The `rounds` table: online-learning rounds from request to verdict.
//!
//! A round is created together with its `fine_tune` job in one transaction, and at most one
//! round per patient is queued or running (a partial unique index). The training thread
//! writes progress every few seconds and learns from the same statement whether an admin
//! asked to cancel. A round that ends with weights stores its model version, its verdict and
//! (when it passed the gate) the patient's new active version in one transaction, so no
//! half-written version is ever active and a repeated job never makes a second version.

use sqlx::FromRow;

use super::jobs::{INSERT_SQL, NewJob, bind_new_job, notify, now_ms};
use super::models::{self, ACTIVATE_SQL, INSERT_VERSION_SQL, ModelVersion, NewModelVersion, bind_new_version};
use super::{Database, StorageError, execute, with_pool};
use crate::domain::{JobId, ModelVersionId, PatientKey, RoundId, RoundState};

/// Kind of the job that runs a round.
pub const FINE_TUNE_JOB: &str = "fine_tune";
/// Learning rounds run after denoising (`denoise`, 10).
pub const FINE_TUNE_PRIORITY: i32 = 20;
/// Attempts before a round's job fails for good (a killed worker costs one).
pub const FINE_TUNE_MAX_ATTEMPTS: i32 = 3;

/// A round as stored.
#[derive(Debug, Clone, FromRow)]
pub struct Round {
    pub id: RoundId,
    pub patient_key: PatientKey,
    #[sqlx(try_from = "String")]
    pub state: RoundState,
    pub kind: String,
    pub pair_source: String,
    pub series_a: String,
    pub series_b: Option<String>,
    /// JSON of the round's settings.
    pub settings: String,
    pub parent_version_id: Option<ModelVersionId>,
    pub job_id: Option<JobId>,
    pub step: i64,
    pub total_steps: i64,
    pub loss: Option<f64>,
    pub validation_loss_parent: Option<f64>,
    pub validation_loss: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub progress_ms: Option<i64>,
    pub cancel_requested_ms: Option<i64>,
    pub cancel_requested_by: Option<String>,
    pub version_id: Option<ModelVersionId>,
    /// JSON of the gate's verdict.
    pub gate: Option<String>,
    pub error: Option<String>,
    pub redenoised_series_uid: Option<String>,
    pub requested_by: String,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

impl Round {
    /// Whether the round is over (nothing will change it again).
    pub fn is_finished(&self) -> bool {
        !self.state.is_active()
    }
}

/// What a new round is.
#[derive(Debug, Clone)]
pub struct NewRound<'a> {
    pub patient_key: &'a PatientKey,
    pub kind: &'a str,
    pub pair_source: &'a str,
    pub series_a: &'a str,
    pub series_b: Option<&'a str>,
    pub settings: &'a str,
    pub total_steps: i64,
    pub requested_by: &'a str,
}

/// How a request for a round ended.
#[derive(Debug, Clone)]
pub enum Created {
    Round(Box<Round>),
    /// The patient already has a queued or running round: its id.
    AlreadyActive(RoundId),
}

/// Progress the training thread reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub step: i64,
    pub loss: Option<f64>,
    pub validation_loss_parent: Option<f64>,
    pub validation_loss: Option<f64>,
    pub eta_seconds: Option<f64>,
}

/// How an admin's cancel request ended.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// A queued round, cancelled at once.
    Cancelled,
    /// A running round: it stops at its next step.
    Requested,
    /// The round is already over, in this state.
    Finished(RoundState),
    NotFound,
}

/// A round's end with weights: the version to store and the gate's verdict.
#[derive(Debug, Clone)]
pub struct Verdict<'a> {
    pub version: NewModelVersion<'a>,
    pub passed: bool,
    /// JSON of the gate's measures and reasons.
    pub gate: &'a str,
    pub validation_loss: f64,
    /// Who the activation is recorded as (the round's requester).
    pub activated_by: &'a str,
}

macro_rules! select_rounds {
    ($rest:literal) => {
        concat!(
            "SELECT id, patient_key, state, kind, pair_source, series_a, series_b, settings, parent_version_id,
                    job_id, step, total_steps, loss, validation_loss_parent, validation_loss, eta_seconds,
                    progress_ms, cancel_requested_ms, cancel_requested_by, version_id, gate, error,
                    redenoised_series_uid, requested_by, created_ms, started_ms, finished_ms
             FROM rounds ",
            $rest
        )
    };
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Creates a queued round and its `fine_tune` job, unless the patient has an active round.
pub async fn create(db: &Database, new: &NewRound<'_>) -> Result<Created, StorageError> {
    let job_id = JobId::generate();
    let now = now_ms();
    let insert_round = "INSERT INTO rounds (patient_key, state, kind, pair_source, series_a, series_b, settings,
                                            total_steps, requested_by, created_ms, job_id)
                        VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, $10)
                        RETURNING id";
    let created: Result<RoundId, sqlx::Error> = with_pool!(db, |pool| {
        async {
            let mut tx = pool.begin_with(db.begin_write()).await?;
            let id: RoundId = sqlx::query_scalar(insert_round)
                .bind(new.patient_key)
                .bind(new.kind)
                .bind(new.pair_source)
                .bind(new.series_a)
                .bind(new.series_b)
                .bind(new.settings)
                .bind(new.total_steps)
                .bind(new.requested_by)
                .bind(now)
                .bind(&job_id)
                .fetch_one(&mut *tx)
                .await?;
            let payload = serde_json::json!({ "round_id": id });
            let key = format!("{FINE_TUNE_JOB}:round:{id}");
            let job = NewJob {
                kind: FINE_TUNE_JOB,
                priority: FINE_TUNE_PRIORITY,
                payload: &payload,
                dedupe_key: Some(&key),
                max_attempts: FINE_TUNE_MAX_ATTEMPTS,
            };
            bind_new_job!(sqlx::query(INSERT_SQL), &job_id, &job, now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(id)
        }
        .await
    });
    match created {
        Ok(id) => {
            notify(db, FINE_TUNE_JOB).await?;
            let round = get(db, id).await?.ok_or_else(|| StorageError::Corrupt(format!("round {id} vanished")))?;
            Ok(Created::Round(Box::new(round)))
        }
        Err(err) if is_unique_violation(&err) => match active_for_patient(db, new.patient_key).await? {
            Some(active) => Ok(Created::AlreadyActive(active.id)),
            // The active round finished in between: the caller may simply ask again.
            None => Err(StorageError::Database(err)),
        },
        Err(err) => Err(StorageError::Database(err)),
    }
}

pub async fn get(db: &Database, id: RoundId) -> Result<Option<Round>, StorageError> {
    Ok(with_pool!(db, |pool| sqlx::query_as(select_rounds!("WHERE id = $1")).bind(id).fetch_optional(pool).await)?)
}

/// The patient's rounds, newest first.
pub async fn for_patient(db: &Database, patient_key: &PatientKey) -> Result<Vec<Round>, StorageError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(select_rounds!("WHERE patient_key = $1 ORDER BY id DESC"))
            .bind(patient_key)
            .fetch_all(pool)
            .await
    })?)
}

/// The patient's queued or running round.
pub async fn active_for_patient(db: &Database, patient_key: &PatientKey) -> Result<Option<Round>, StorageError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(select_rounds!("WHERE patient_key = $1 AND state IN ('queued', 'running')"))
            .bind(patient_key)
            .fetch_optional(pool)
            .await
    })?)
}

/// The job starts (or restarts) the round from `parent_version_id`: progress is reset.
/// False when the round is no longer queued or running (cancelled, finished).
pub async fn start(
    db: &Database,
    id: RoundId,
    parent_version_id: Option<ModelVersionId>,
) -> Result<bool, StorageError> {
    let sql = "UPDATE rounds SET state = 'running', started_ms = $2, parent_version_id = $3, step = 0, loss = NULL,
                      validation_loss_parent = NULL, validation_loss = NULL, eta_seconds = NULL, progress_ms = $2,
                      error = NULL
               WHERE id = $1 AND state IN ('queued', 'running') AND cancel_requested_ms IS NULL";
    let now = now_ms();
    let updated = execute!(db, sql, id, now, parent_version_id)?;
    Ok(updated == 1)
}

/// Records progress; returns true when the round should stop (an admin asked to cancel,
/// or the round is no longer running).
pub async fn report_progress(db: &Database, id: RoundId, progress: &Progress) -> Result<bool, StorageError> {
    let sql = "UPDATE rounds SET step = $2, loss = COALESCE($3, loss),
                      validation_loss_parent = COALESCE($4, validation_loss_parent),
                      validation_loss = COALESCE($5, validation_loss), eta_seconds = $6, progress_ms = $7
               WHERE id = $1 AND state = 'running'
               RETURNING cancel_requested_ms";
    let now = now_ms();
    let found: Option<Option<i64>> = with_pool!(db, |pool| sqlx::query_scalar(sql)
        .bind(id)
        .bind(progress.step)
        .bind(progress.loss)
        .bind(progress.validation_loss_parent)
        .bind(progress.validation_loss)
        .bind(progress.eta_seconds)
        .bind(now)
        .fetch_optional(pool)
        .await)?;
    Ok(!matches!(found, Some(None)))
}

/// Whether the round should stop: cancel requested, or no longer running.
pub async fn should_stop(db: &Database, id: RoundId) -> Result<bool, StorageError> {
    let sql = "SELECT cancel_requested_ms FROM rounds WHERE id = $1 AND state = 'running'";
    let found: Option<Option<i64>> =
        with_pool!(db, |pool| sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await)?;
    Ok(!matches!(found, Some(None)))
}

/// An admin asks to cancel round `id`.
pub async fn request_cancel(db: &Database, id: RoundId, requested_by: &str) -> Result<CancelOutcome, StorageError> {
    let now = now_ms();
    let queued_sql = "UPDATE rounds SET state = 'cancelled', cancel_requested_ms = $2, cancel_requested_by = $3,
                             finished_ms = $2, error = 'cancelled before it started'
                      WHERE id = $1 AND state = 'queued'";
    let running_sql = "UPDATE rounds SET cancel_requested_ms = COALESCE(cancel_requested_ms, $2),
                              cancel_requested_by = COALESCE(cancel_requested_by, $3)
                       WHERE id = $1 AND state = 'running'";
    for (sql, outcome) in [(queued_sql, CancelOutcome::Cancelled), (running_sql, CancelOutcome::Requested)] {
        let updated = execute!(db, sql, id, now, requested_by)?;
        if updated == 1 {
            return Ok(outcome);
        }
    }
    Ok(match get(db, id).await? {
        Some(round) => CancelOutcome::Finished(round.state),
        None => CancelOutcome::NotFound,
    })
}

/// Ends a running round without a version: `cancelled` or `failed`, with the reason.
pub async fn finish_without_version(
    db: &Database,
    id: RoundId,
    state: RoundState,
    reason: &str,
) -> Result<bool, StorageError> {
    let sql = "UPDATE rounds SET state = $2, error = $3, finished_ms = $4, eta_seconds = NULL
               WHERE id = $1 AND state IN ('queued', 'running')";
    let now = now_ms();
    let updated = execute!(db, sql, id, state.as_str(), reason, now)?;
    Ok(updated == 1)
}

/// Ends a running round with its version: the version, the round's verdict and (when the
/// gate passed) the patient's active version, in one transaction. `None` when the round was
/// no longer running (cancelled meanwhile): nothing is stored.
pub async fn finish_with_version(
    db: &Database,
    id: RoundId,
    verdict: &Verdict<'_>,
) -> Result<Option<ModelVersion>, StorageError> {
    let now = now_ms();
    let new = &verdict.version;
    let uid = models::round_device_uid(new.sha256, new.parent_id, new.patient_key, id);
    let state = if verdict.passed { RoundState::Activated } else { RoundState::Rejected };
    let round_sql = "UPDATE rounds SET state = $2, version_id = $3, gate = $4, validation_loss = $5,
                            finished_ms = $6, eta_seconds = NULL, step = total_steps
                     WHERE id = $1 AND state = 'running' AND cancel_requested_ms IS NULL";
    let version_id: Option<ModelVersionId> = with_pool!(db, |pool| {
        async {
            let mut tx = pool.begin_with(db.begin_write()).await?;
            let version_id: ModelVersionId =
                bind_new_version!(sqlx::query_scalar(INSERT_VERSION_SQL), &uid, new, now).fetch_one(&mut *tx).await?;
            let updated = sqlx::query(round_sql)
                .bind(id)
                .bind(state.as_str())
                .bind(version_id)
                .bind(verdict.gate)
                .bind(verdict.validation_loss)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated != 1 {
                tx.rollback().await?;
                return Ok::<_, sqlx::Error>(None);
            }
            if verdict.passed
                && let Some(patient_key) = new.patient_key
            {
                sqlx::query(ACTIVATE_SQL)
                    .bind(patient_key)
                    .bind(version_id)
                    .bind(verdict.activated_by)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Some(version_id))
        }
        .await
    })?;
    match version_id {
        Some(id) => Ok(models::get(db, id).await?),
        None => Ok(None),
    }
}

/// Notes the series re-denoised with the round's new version.
pub async fn note_redenoised(db: &Database, id: RoundId, series_uid: &str) -> Result<(), StorageError> {
    let sql = "UPDATE rounds SET redenoised_series_uid = $2 WHERE id = $1";
    execute!(db, sql, id, series_uid)?;
    Ok(())
}

/// Ends every queued or running round whose job is over (it failed for good, e.g. after a
/// worker was killed once too often): the round fails with the job's last error. Returns
/// how many rounds it ended.
pub async fn fail_orphaned(db: &Database) -> Result<u64, StorageError> {
    let sql = "UPDATE rounds SET state = 'failed', finished_ms = $1, eta_seconds = NULL,
                      error = COALESCE((SELECT 'its job failed: ' || j.last_error FROM jobs j WHERE j.id = rounds.job_id),
                                       'its job ended without finishing the round')
               WHERE state IN ('queued', 'running')
                 AND EXISTS (SELECT 1 FROM jobs j
                             WHERE j.id = rounds.job_id AND j.state IN ('failed', 'succeeded', 'cancelled'))";
    Ok(execute!(db, sql, now_ms())?)
}
