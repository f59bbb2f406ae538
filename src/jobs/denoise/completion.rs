//! When a series is complete, and the one `denoise` job its completion enqueues
//! (docs/interoperability.md §3). A series is complete when its instance count reaches the
//! header's expected count, checked as each instance is stored, or after a quiet period
//! without new instances, checked by a sweeper that every job-running process runs.
//! Whatever is not to be denoised (dynamic, gated, Enhanced PET, N2N halves, low-count
//! realizations, petal's own output) is recorded with its reason and never queued.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::blobs::BlobStore;
use crate::dicom::ParsedInstance;
use crate::dicom::series_kind::{DescriptionRules, SeriesKind, classify_facts, is_n2n_half};
use crate::domain::{DenoiseStrength, JobId, SeriesState};
use crate::ingest::{self, IngestError, Origin, Receipt, Stored};
use crate::storage::jobs::{self, NewJob, now_ms};
use crate::storage::series_processing::{self, FirstSight, Queued};
use crate::storage::{Database, StorageError};

/// Kind of the job that denoises one series.
pub const DENOISE_JOB: &str = "denoise";
/// Denoising comes before learning rounds (`fine_tune`, 20).
pub const DENOISE_PRIORITY: i32 = 10;
/// Attempts before a denoise job fails for good.
pub const DENOISE_MAX_ATTEMPTS: i32 = 5;

/// What a `denoise` job carries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DenoisePayload {
    pub series_uid: String,
    /// `petal` for automatic runs, else the admin's token name.
    pub requested_by: String,
    /// The strength asked for; `None` (automatic runs, and admins who name none) takes the
    /// worker's configured strength.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<DenoiseStrength>,
}

impl DenoisePayload {
    /// An automatic run or a re-run at the configured strength.
    pub fn new(series_uid: &str, requested_by: &str) -> Self {
        Self { series_uid: series_uid.to_owned(), requested_by: requested_by.to_owned(), strength: None }
    }
}

/// How a series is judged complete.
#[derive(Debug, Clone)]
pub struct CompletionSettings {
    /// A series without the expected count is complete after this long without new instances.
    pub quiet_period: Duration,
    pub rules: DescriptionRules,
}

/// How a request to denoise ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job.
    Queued(JobId),
    /// A job for the series is already queued or running.
    AlreadyActive(JobId),
    /// The series is not in a state to be queued (e.g. another caller queued it first).
    NotEligible,
}

fn dedupe_key(series_uid: &str) -> String {
    format!("{DENOISE_JOB}:{series_uid}")
}

/// Stores one instance through [`crate::ingest`] and notes it for its series' completion
/// ([`on_instance_stored`]); `rules` tell which series are training material rather than
/// images to denoise. A re-sent instance is noted too, so a series whose tracking failed
/// once recovers. Every caller that receives or derives instances (STOW-RS, C-STORE, the
/// denoise job) stores them through here or through [`store_and_note_batch`].
pub async fn store_and_note(
    db: &Database,
    blobs: &BlobStore,
    bytes: Bytes,
    origin: Origin<'_>,
    rules: &DescriptionRules,
) -> Receipt {
    let mut receipts = store_and_note_batch(db, blobs, vec![bytes], origin, rules).await;
    match receipts.pop() {
        Some(receipt) => receipt,
        None => unreachable!("one receipt per instance"),
    }
}

/// [`store_and_note`] for a batch (the parts of a STOW-RS request): the batch is indexed
/// in one transaction, and each series it touches is noted once, after all of it is
/// indexed. Receipts come in the order given.
pub async fn store_and_note_batch(
    db: &Database,
    blobs: &BlobStore,
    parts: Vec<Bytes>,
    origin: Origin<'_>,
    rules: &DescriptionRules,
) -> Vec<Receipt> {
    let stored = ingest::store_instances(db, blobs, parts, origin).await;
    // Which stored instances belong to each series, in order of first appearance.
    let mut by_series: Vec<(&str, Vec<usize>)> = Vec::new();
    for (at, (receipt, parsed)) in stored.iter().enumerate() {
        if let (Ok(Stored::New | Stored::Duplicate), Some(parsed)) = (&receipt.result, parsed) {
            let series = parsed.series_uid.as_str();
            match by_series.iter_mut().find(|(uid, _)| *uid == series) {
                Some((_, members)) => members.push(at),
                None => by_series.push((series, vec![at])),
            }
        }
    }
    let mut failed: Vec<(usize, StorageError)> = Vec::new();
    for (_, members) in &by_series {
        let Some(first) = stored[members[0]].1.as_ref() else { continue };
        if on_instance_stored(db, first, rules).await.is_ok() {
            continue;
        }
        // Noting the series failed: note each instance on its own, so each receipt says
        // what happened to it.
        for &at in members {
            if let Some(parsed) = stored[at].1.as_ref()
                && let Err(err) = on_instance_stored(db, parsed, rules).await
            {
                failed.push((at, err));
            }
        }
    }
    let mut receipts: Vec<Receipt> = stored.into_iter().map(|(receipt, _)| receipt).collect();
    for (at, err) in failed {
        receipts[at].result = Err(IngestError::Index(err));
    }
    receipts
}

/// Notes a stored instance (new or re-sent) and enqueues the series' job when it completes it.
pub async fn on_instance_stored(
    db: &Database,
    instance: &ParsedInstance,
    rules: &DescriptionRules,
) -> Result<(), StorageError> {
    let series_uid = instance.series_uid.as_str();
    let first = match classify_facts(&instance.kind, rules) {
        SeriesKind::Denoisable { expected } => FirstSight {
            state: SeriesState::Receiving,
            reason: None,
            expected_instances: expected.map(i64::from),
            n2n_half: false,
        },
        SeriesKind::NotDenoised { reason } => {
            series_processing::note_instance(
                db,
                series_uid,
                &FirstSight {
                    state: SeriesState::NotDenoised,
                    reason: Some(&reason),
                    // An N2N half's count tells online learning when the half is complete.
                    expected_instances: instance.kind.slices.map(i64::from),
                    n2n_half: is_n2n_half(&instance.kind, rules),
                },
            )
            .await?;
            return Ok(());
        }
    };
    series_processing::note_instance(db, series_uid, &first).await?;
    if series_processing::complete_if_counted(db, series_uid).await? {
        enqueue_denoise(db, &DenoisePayload::new(series_uid, "petal"), false).await?;
    }
    Ok(())
}

/// Queues a denoise job for the series (at most one is active per series): automatically
/// from `complete`, or as an admin's re-run (`rerun`) also from `done` or `failed`.
pub async fn enqueue_denoise(db: &Database, request: &DenoisePayload, rerun: bool) -> Result<Enqueued, StorageError> {
    let series_uid = request.series_uid.as_str();
    let key = dedupe_key(series_uid);
    let payload = serde_json::to_value(request).map_err(|e| StorageError::encode("the denoise payload", e))?;
    let job = NewJob {
        kind: DENOISE_JOB,
        priority: DENOISE_PRIORITY,
        payload: &payload,
        dedupe_key: Some(&key),
        max_attempts: DENOISE_MAX_ATTEMPTS,
    };
    Ok(match series_processing::queue_job(db, series_uid, &job, rerun).await? {
        Queued::Job(id) => Enqueued::Queued(id),
        Queued::AlreadyActive => match jobs::active_with_key(db, &key).await? {
            Some(active) => Enqueued::AlreadyActive(active.id),
            None => Enqueued::NotEligible,
        },
        Queued::NotEligible => Enqueued::NotEligible,
    })
}

/// One pass: completes quiet series and enqueues every complete series that has no job.
pub async fn sweep(db: &Database, settings: &CompletionSettings) -> Result<usize, StorageError> {
    let quiet_ms = i64::try_from(settings.quiet_period.as_millis()).unwrap_or(i64::MAX);
    let quiet = series_processing::complete_quiet(db, now_ms().saturating_sub(quiet_ms)).await?;
    if quiet > 0 {
        tracing::info!(series = quiet, "series complete after their quiet period");
    }
    let waiting = series_processing::complete_without_job(db, 100).await?;
    for series_uid in &waiting {
        enqueue_denoise(db, &DenoisePayload::new(series_uid, "petal"), false).await?;
    }
    Ok(waiting.len())
}

/// Sweeps every `every` until `stop` turns true.
pub async fn run_sweeper(db: Database, settings: CompletionSettings, every: Duration, stop: watch::Receiver<bool>) {
    crate::jobs::worker::every(every, stop, || async {
        if let Err(err) = sweep(&db, &settings).await {
            tracing::warn!(error = %err, "the series completion sweep failed; retrying");
        }
    })
    .await;
}
