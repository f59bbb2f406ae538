//! The `denoise` job: a complete series from the index and blob store, through the
//! network, back into the index as a derived series of the same study.
//!
//! Idempotent, because the queue delivers at least once: the derived UIDs are derived
//! from the job's id, so a repeated attempt writes the same instances (which ingest treats
//! as already stored) and the series still ends with exactly one derived series per job.
//! A job that a newer one has replaced (an admin re-run) does nothing. Volumes that cannot
//! be assembled fail at once with the reason in the series status; other failures (the
//! engine, the store) are retried by the queue. A patient erased while their series is
//! denoised stays erased: the derived instances are refused (see [`crate::ingest::Origin`]).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;

use super::active_model::active_model;
use super::completion::DenoisePayload;
use super::denoise_series::{DenoiseError, DerivedSeriesSettings, denoise_series};
use super::stored_series::read_series_files;
use crate::blobs::BlobStore;
use crate::dicom::Uid;
use crate::dicom::series_kind::DescriptionRules;
use crate::domain::{DenoiseStrength, SeriesState};
use crate::inference::InferenceContext;
use crate::ingest::{IngestError, Origin, Stored};
use crate::jobs::worker::Handler;
use crate::storage::Database;
use crate::storage::audit::{self, NewAuditEvent, Outcome};
use crate::storage::jobs::Job;
use crate::storage::series_processing::{self, Denoised};

/// The actor petal's own actions are audited as.
const SYSTEM_ACTOR: &str = "petal";

/// What the derived series are called and numbered (see `DerivedSeriesArgs`).
#[derive(Debug, Clone)]
pub struct DerivedNaming {
    pub uid_root: Uid,
    pub label: String,
    pub series_number_offset: i32,
    /// The strength of jobs that ask for none.
    pub strength: DenoiseStrength,
}

/// Everything a denoise job needs, shared by every job the worker runs.
pub struct DenoiseJobContext {
    pub db: Database,
    pub blobs: BlobStore,
    pub inference: InferenceContext,
    pub naming: DerivedNaming,
    pub rules: DescriptionRules,
    /// Where a finished derived series (and, when asked, its source) is forwarded.
    pub forwarding: crate::jobs::forward::ForwardSettings,
}

/// The worker's handler for `denoise` jobs.
pub fn handler(context: Arc<DenoiseJobContext>) -> Handler {
    Arc::new(move |job: Job| {
        let context = context.clone();
        Box::pin(async move { run(&context, job).await })
    })
}

async fn run(context: &DenoiseJobContext, job: Job) -> anyhow::Result<()> {
    let payload: DenoisePayload = serde_json::from_str(&job.payload).context("reading the job's payload")?;
    let db = &context.db;
    let Some(series) = series_processing::get(db, &payload.series_uid).await? else {
        tracing::info!("the series is gone (deleted); nothing to do");
        return Ok(());
    };
    if series.job_id.as_ref() != Some(&job.id) {
        tracing::info!("a newer denoise job replaced this one; nothing to do");
        return Ok(());
    }
    if series.state == SeriesState::Done {
        tracing::info!("an earlier attempt of this job finished the series");
        return Ok(());
    }
    if !series_processing::mark_denoising(db, &series.series_uid, &job.id).await? {
        tracing::info!(state = %series.state, "the series is not waiting for this job; nothing to do");
        return Ok(());
    }
    let engine = context.inference.engine.as_ref().context(
        "the inference engine is not running in this worker (see /readyz): run scripts/setup or set ORT_DYLIB_PATH",
    )?;
    let chosen = active_model(&context.db, &context.inference, &series.patient_key).await?;

    let sources = read_series_files(db, &context.blobs, &series.study_uid, &series.series_uid).await?;
    let settings = DerivedSeriesSettings {
        uid_root: context.naming.uid_root.clone(),
        label: context.naming.label.clone(),
        series_number_offset: context.naming.series_number_offset,
        model_version: chosen.version_id,
        device_uid: chosen.device_uid.clone(),
        uid_seed: Some(job.id.to_string()),
        strength: payload.strength.unwrap_or(context.naming.strength),
    };
    let started = Instant::now();
    let denoised = match denoise_series(engine, chosen.model.clone(), &sources, &settings).await {
        Ok(denoised) => denoised,
        Err(DenoiseError::Volume(err)) => {
            let reason = format!("the series cannot be made into a volume: {err}");
            tracing::warn!(reason, "series refused");
            series_processing::mark_failed(db, &series.series_uid, &job.id, &reason).await?;
            return Ok(());
        }
        Err(err) => return Err(err).context("denoising the series"),
    };
    let study = Uid::parse(&series.study_uid).context("the stored study UID")?;
    let origin = Origin::Derived { study: &study };
    for instance in denoised.instances {
        let receipt = crate::jobs::denoise::completion::store_and_note(
            db,
            &context.blobs,
            Bytes::from(instance),
            origin,
            &context.rules,
        )
        .await;
        match receipt.result {
            Ok(Stored::New | Stored::Duplicate | Stored::Conflicting) => {}
            Err(IngestError::StudyGone(_)) => {
                // The erasure removed what was stored before; the rest is dropped here.
                tracing::info!("the patient was erased while the series was denoised; nothing is kept");
                return Ok(());
            }
            Err(err) => return Err(err).context("storing a derived instance"),
        }
    }
    let inference_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let normalisation = serde_json::to_string(&denoised.normalisation)?;
    let outcome = Denoised {
        derived_series_uid: &denoised.series_uid,
        model_version_id: chosen.version_id,
        inference_ms,
        normalisation: &normalisation,
    };
    // Queued before the series is marked done: a retry after a failure here queues again
    // (forwards are deduplicated), while a retry after `mark_done` would find nothing to do.
    forward_series(&context.forwarding, db, &series.study_uid, (&series.series_uid, &denoised.series_uid)).await?;
    series_processing::mark_done(db, &series.series_uid, &job.id, &outcome).await?;
    // Who asked, and the strength and model the derived series was made with.
    let detail = format!(
        "strength={} derived_series={} model_version={} requested_by={}",
        settings.strength,
        denoised.series_uid,
        chosen.version_id.map_or_else(|| "base".to_owned(), |id| id.to_string()),
        payload.requested_by
    );
    let event = NewAuditEvent {
        actor: SYSTEM_ACTOR,
        action: "series.denoised",
        resource: &format!("/api/v1/series/{}", series.series_uid),
        patient_key: Some(&series.patient_key),
        outcome: Outcome::Success,
        request_id: None,
        detail: Some(&detail),
    };
    audit::append(db, &event).await?;
    crate::job_metrics::job_metrics().series_seconds.observe(inference_ms as f64 / 1000.0);
    tracing::info!(slices = sources.len(), inference_ms, "series denoised");
    Ok(())
}

/// Queues the derived series for every destination that receives derived series, and the
/// source series for those that receive sources.
async fn forward_series(
    settings: &crate::jobs::forward::ForwardSettings,
    db: &Database,
    study_uid: &str,
    (source_uid, derived_uid): (&str, &str),
) -> Result<(), crate::storage::StorageError> {
    use crate::domain::Forwarded;
    use crate::jobs::forward::forward_series as queue;
    let derived = queue(db, settings, study_uid, derived_uid, Forwarded::Derived).await?;
    let sources = queue(db, settings, study_uid, source_uid, Forwarded::Source).await?;
    if derived + sources > 0 {
        tracing::info!(destinations = derived, sources, "derived series queued for forwarding");
    }
    Ok(())
}
