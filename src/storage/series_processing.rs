//! The `series_processing` table: what petal does with each series (docs/interoperability.md §3): how
//! many instances complete it, its state from receiving to done, its denoise job, and the
//! derived series that came of it. Every transition is one conditional UPDATE, so two
//! processes racing on one series cannot both move it.

use sqlx::FromRow;

use super::jobs::{INSERT_SQL, NewJob, bind_new_job, notify, now_ms};
use super::{Database, StorageError, execute, with_pool};
use crate::domain::{JobId, ModelVersionId, PatientKey, SeriesState};

/// A series' processing record, with what the index knows of it.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct SeriesProcessing {
    pub series_uid: String,
    pub study_uid: String,
    pub patient_key: PatientKey,
    #[sqlx(try_from = "String")]
    pub state: SeriesState,
    pub reason: Option<String>,
    pub expected_instances: Option<i64>,
    pub received_instances: i64,
    pub first_instance_ms: i64,
    pub last_instance_ms: i64,
    pub completed_ms: Option<i64>,
    pub job_id: Option<JobId>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub inference_ms: Option<i64>,
    pub derived_series_uid: Option<String>,
    pub model_version_id: Option<ModelVersionId>,
    /// JSON text; the API shows it parsed (`normalisation_used`), not twice.
    #[serde(skip)]
    pub normalisation: Option<String>,
    pub source_series_uid: Option<String>,
    pub superseded_by: Option<String>,
    /// A Noise2Noise half: training material for online learning.
    pub n2n_half: bool,
}

/// How a series starts out when its first instance arrives.
#[derive(Debug, Clone)]
pub struct FirstSight<'a> {
    /// `receiving` (to be denoised once complete) or `not_denoised`.
    pub state: SeriesState,
    pub reason: Option<&'a str>,
    pub expected_instances: Option<i64>,
    /// The series is a Noise2Noise half (see [`SeriesProcessing::n2n_half`]).
    pub n2n_half: bool,
}

/// What a finished denoise job produced.
#[derive(Debug, Clone)]
pub struct Denoised<'a> {
    pub derived_series_uid: &'a str,
    pub model_version_id: Option<ModelVersionId>,
    pub inference_ms: i64,
    pub normalisation: &'a str,
}

macro_rules! select_processing {
    ($rest:literal) => {
        concat!(
            "SELECT p.series_uid, se.study_uid, st.patient_key, p.state, p.reason,
                    CAST(p.expected_instances AS BIGINT) AS expected_instances,
                    (SELECT COUNT(*) FROM instances i WHERE i.series_uid = p.series_uid) AS received_instances,
                    p.first_instance_ms, p.last_instance_ms, p.completed_ms, p.job_id, p.started_ms,
                    p.finished_ms, p.inference_ms, p.derived_series_uid, p.model_version_id, p.normalisation,
                    p.source_series_uid, p.superseded_by, p.n2n_half
             FROM series_processing p
             JOIN series se ON se.series_uid = p.series_uid
             JOIN studies st ON st.study_uid = se.study_uid ",
            $rest
        )
    };
}

/// Notes a newly stored instance: creates the record on the series' first instance, else
/// moves its last-instance time (the quiet period counts from it).
pub async fn note_instance(db: &Database, series_uid: &str, first: &FirstSight<'_>) -> Result<(), StorageError> {
    let now = now_ms();
    let sql = "INSERT INTO series_processing
                   (series_uid, state, reason, expected_instances, first_instance_ms, last_instance_ms, n2n_half)
               VALUES ($1, $2, $3, $4, $5, $5, $6)
               ON CONFLICT (series_uid) DO UPDATE SET last_instance_ms = excluded.last_instance_ms";
    execute!(db, sql, series_uid, first.state.as_str(), first.reason, first.expected_instances, now, first.n2n_half)?;
    Ok(())
}

/// Marks the series complete if it is receiving and holds its expected count; returns
/// whether this call did it (only one caller ever does).
pub async fn complete_if_counted(db: &Database, series_uid: &str) -> Result<bool, StorageError> {
    let sql = "UPDATE series_processing SET state = 'complete', completed_ms = $2
               WHERE series_uid = $1 AND state = 'receiving' AND expected_instances IS NOT NULL
                 AND (SELECT COUNT(*) FROM instances i WHERE i.series_uid = $1) >= expected_instances";
    let now = now_ms();
    let done = execute!(db, sql, series_uid, now)?;
    Ok(done == 1)
}

/// Marks complete every receiving series without a new instance since `quiet_since_ms`.
pub async fn complete_quiet(db: &Database, quiet_since_ms: i64) -> Result<u64, StorageError> {
    let sql = "UPDATE series_processing SET state = 'complete', completed_ms = $2
               WHERE state = 'receiving' AND last_instance_ms <= $1";
    let now = now_ms();
    let done = execute!(db, sql, quiet_since_ms, now)?;
    Ok(done)
}

/// Series that are complete but have no job yet (just completed, or a process stopped
/// between completing and enqueueing).
pub async fn complete_without_job(db: &Database, limit: i64) -> Result<Vec<String>, StorageError> {
    let sql = "SELECT series_uid FROM series_processing WHERE state = 'complete' ORDER BY completed_ms LIMIT $1";
    Ok(with_pool!(db, |pool| sqlx::query_scalar(sql).bind(limit).fetch_all(pool).await)?)
}

/// How [`queue_job`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// The series is queued with this new job.
    Job(JobId),
    /// A job holding the same dedupe key is queued or running; nothing changed.
    AlreadyActive,
    /// The series is not in a state this request may queue from; nothing changed.
    NotEligible,
}

/// Queues `job` for the series in one transaction with the series' move to `queued`, so a
/// worker never sees the job before the series names it, and two callers never both queue.
/// A series is queued from `complete`, and, when `rerun` is set, also from `done` or `failed`.
pub async fn queue_job(db: &Database, series_uid: &str, job: &NewJob<'_>, rerun: bool) -> Result<Queued, StorageError> {
    let id = JobId::generate();
    let now = now_ms();
    let move_sql = "UPDATE series_processing SET state = 'queued', job_id = $2, reason = NULL
                    WHERE series_uid = $1 AND (state = 'complete' OR ($3 AND state IN ('done', 'failed')))";
    let outcome = with_pool!(db, |pool| {
        async {
            let mut tx = pool.begin_with(db.begin_write()).await?;
            let moved =
                sqlx::query(move_sql).bind(series_uid).bind(&id).bind(rerun).execute(&mut *tx).await?.rows_affected();
            if moved == 0 {
                return Ok::<_, sqlx::Error>(Queued::NotEligible);
            }
            let inserted =
                bind_new_job!(sqlx::query(INSERT_SQL), &id, job, now).execute(&mut *tx).await?.rows_affected();
            if inserted == 0 {
                return Ok(Queued::AlreadyActive);
            }
            tx.commit().await?;
            Ok(Queued::Job(id.clone()))
        }
        .await
    })?;
    if matches!(outcome, Queued::Job(_)) {
        notify(db, job.kind).await?;
    }
    Ok(outcome)
}

/// The job `job_id` starts on the series; false when the series now belongs to another job.
pub async fn mark_denoising(db: &Database, series_uid: &str, job_id: &JobId) -> Result<bool, StorageError> {
    let sql = "UPDATE series_processing SET state = 'denoising', started_ms = $3, finished_ms = NULL
               WHERE series_uid = $1 AND job_id = $2 AND state IN ('queued', 'denoising', 'failed')";
    let now = now_ms();
    let done = execute!(db, sql, series_uid, job_id, now)?;
    Ok(done == 1)
}

/// The series was denoised into `outcome`; earlier derived series of it become superseded.
pub async fn mark_done(
    db: &Database,
    series_uid: &str,
    job_id: &JobId,
    outcome: &Denoised<'_>,
) -> Result<bool, StorageError> {
    let now = now_ms();
    let done_sql = "UPDATE series_processing
                    SET state = 'done', finished_ms = $3, inference_ms = $4, derived_series_uid = $5,
                        model_version_id = $6, normalisation = $7, reason = NULL
                    WHERE series_uid = $1 AND job_id = $2";
    let derived_sql = "UPDATE series_processing SET source_series_uid = $1 WHERE series_uid = $2";
    let supersede_sql = "UPDATE series_processing SET superseded_by = $2
                         WHERE source_series_uid = $1 AND series_uid <> $2 AND superseded_by IS NULL";
    let done = with_pool!(db, |pool| {
        async {
            let mut tx = pool.begin_with(db.begin_write()).await?;
            let done = sqlx::query(done_sql)
                .bind(series_uid)
                .bind(job_id)
                .bind(now)
                .bind(outcome.inference_ms)
                .bind(outcome.derived_series_uid)
                .bind(outcome.model_version_id)
                .bind(outcome.normalisation)
                .execute(&mut *tx)
                .await?;
            sqlx::query(derived_sql).bind(series_uid).bind(outcome.derived_series_uid).execute(&mut *tx).await?;
            sqlx::query(supersede_sql).bind(series_uid).bind(outcome.derived_series_uid).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(done.rows_affected())
        }
        .await
    })?;
    Ok(done == 1)
}

/// The series cannot be denoised (e.g. slices missing); `reason` says why.
pub async fn mark_failed(db: &Database, series_uid: &str, job_id: &JobId, reason: &str) -> Result<(), StorageError> {
    let sql = "UPDATE series_processing SET state = 'failed', reason = $3, finished_ms = $4
               WHERE series_uid = $1 AND job_id = $2";
    let now = now_ms();
    execute!(db, sql, series_uid, job_id, reason, now)?;
    Ok(())
}

pub async fn get(db: &Database, series_uid: &str) -> Result<Option<SeriesProcessing>, StorageError> {
    let sql = select_processing!("WHERE p.series_uid = $1");
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(series_uid).fetch_optional(pool).await)?)
}

/// The derived series made from `source_series_uid`, oldest first.
pub async fn derived_from(db: &Database, source_series_uid: &str) -> Result<Vec<SeriesProcessing>, StorageError> {
    let sql = select_processing!("WHERE p.source_series_uid = $1 ORDER BY p.first_instance_ms, p.series_uid");
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(source_series_uid).fetch_all(pool).await)?)
}

/// The Noise2Noise halves of a patient (or of every patient), oldest first; with
/// `unused_only`, only those no round has trained on (what pair detection looks at every few
/// seconds, so its work does not grow with the history).
pub async fn n2n_halves(
    db: &Database,
    patient_key: Option<&PatientKey>,
    unused_only: bool,
) -> Result<Vec<SeriesProcessing>, StorageError> {
    let sql = select_processing!(
        "WHERE p.n2n_half AND ($1 IS NULL OR st.patient_key = $1)
           AND NOT ($2 AND EXISTS (SELECT 1 FROM rounds r
                                   WHERE r.series_a = p.series_uid OR r.series_b = p.series_uid))
         ORDER BY p.first_instance_ms, p.series_uid"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(patient_key).bind(unused_only).fetch_all(pool).await)?)
}

/// The series of a study that a reader reads: neither Noise2Noise halves nor petal's own
/// derived series, oldest first (where a round finds the full-count series its halves were
/// split from).
pub async fn full_count_series(db: &Database, study_uid: &str) -> Result<Vec<SeriesProcessing>, StorageError> {
    let sql = select_processing!(
        "WHERE se.study_uid = $1 AND NOT p.n2n_half AND p.source_series_uid IS NULL
         ORDER BY p.first_instance_ms, p.series_uid"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(study_uid).fetch_all(pool).await)?)
}

/// The patient's most recent series that petal denoised (its own derived series excluded):
/// what a new model version is shown on first.
pub async fn latest_denoised(
    db: &Database,
    patient_key: &PatientKey,
) -> Result<Option<SeriesProcessing>, StorageError> {
    let sql = select_processing!(
        "WHERE st.patient_key = $1 AND p.state = 'done' AND p.source_series_uid IS NULL
         ORDER BY p.completed_ms DESC, p.series_uid LIMIT 1"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(sql).bind(patient_key).fetch_optional(pool).await)?)
}
