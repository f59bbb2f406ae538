//! The `fine_tune` job: one round from its queued record to a stored, gated model version.
//!
//! The job fixes the parent (the patient's active version, else the base model), reads the
//! pair from the blob store, and trains on a blocking thread, which writes progress every
//! few seconds and looks for a cancel request at every step. The gate then compares the new
//! network with its parent on the pair's held-out slices and on the study's full-count
//! series (what gets denoised; half A when the study has none), and the version, the verdict and
//! (when it passed) the activation are stored in one transaction. An activated version is
//! shown on the patient's latest series at once: that series is denoised again.
//!
//! The queue delivers at least once. A worker killed mid-round leaves nothing stored; the
//! next attempt trains again from the parent. A repeated job of a finished round only
//! completes what may be missing after it (the re-denoise).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::LearningSettings;
use crate::blobs::BlobStore;
use crate::dicom::series_image::{PairError, pair_of, series_image};
use crate::domain::{RoundId, RoundState};
use crate::inference::InferenceContext;
use crate::jobs::denoise::active_model::{ActiveModel, active_model};
use crate::jobs::denoise::completion::{DenoisePayload, Enqueued, enqueue_denoise};
use crate::jobs::denoise::stored_series::read_series_files;
use crate::jobs::worker::Handler;
use crate::science::image::Image3;
use crate::science::model::backend::TrainingDevice;
use crate::science::model::burn_denoise::denoise_with_burn;
use crate::science::training::gate::as_used::{AsUsedEvidence, AsUsedSeries};
use crate::science::training::gate::{self, GateVerdict, RoundEvidence};
use crate::science::training::n2n_round::{
    Flow, N2nPair, RoundError, RoundObserver, RoundOutcome, RoundReport, RoundSettings, run_round_on_best_device,
};
use crate::science::training::pair_source::neighbour_subsampled;
use crate::storage::audit::{self, NewAuditEvent, Outcome};
use crate::storage::jobs::Job;
use crate::storage::models::{ModelSource, NewModelVersion};
use crate::storage::rounds::{self, Progress, Round, Verdict};
use crate::storage::{Database, series_processing};

/// The actor petal's own actions are audited as.
const SYSTEM_ACTOR: &str = "petal";

/// What a `fine_tune` job carries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoundPayload {
    pub round_id: RoundId,
}

/// Everything a round job needs, shared by every job the worker runs.
pub struct RoundJobContext {
    pub db: Database,
    pub blobs: BlobStore,
    pub inference: InferenceContext,
    pub learning: LearningSettings,
    /// Turns true when the process stops: a running round then stops at its next step and
    /// its job is put back, to start again from the parent in another worker.
    pub shutdown: watch::Receiver<bool>,
}

/// The worker's handler for `fine_tune` jobs.
pub fn handler(context: Arc<RoundJobContext>) -> Handler {
    Arc::new(move |job: Job| {
        let context = context.clone();
        Box::pin(async move { run(&context, job).await })
    })
}

/// The report stored with a round's model version.
#[derive(serde::Serialize)]
struct VersionReport<'a> {
    round_id: RoundId,
    pair_source: &'a str,
    series: [Option<&'a str>; 2],
    device: TrainingDevice,
    round: &'a RoundReport,
    gate: &'a GateVerdict,
}

async fn run(context: &RoundJobContext, job: Job) -> anyhow::Result<()> {
    let payload: RoundPayload = serde_json::from_str(&job.payload).context("reading the job's payload")?;
    let db = &context.db;
    let Some(round) = rounds::get(db, payload.round_id).await? else {
        tracing::info!("the round is gone (its patient was erased); nothing to do");
        return Ok(());
    };
    if round.is_finished() {
        return follow_up(context, &round).await;
    }
    if round.cancel_requested_ms.is_some() {
        cancelled(db, &round, 0).await?;
        return Ok(());
    }
    let parent = active_model(db, &context.inference, &round.patient_key).await?;
    if !rounds::start(db, round.id, parent.version_id).await? {
        if let Some(now) = rounds::get(db, round.id).await?
            && !now.is_finished()
        {
            cancelled(db, &now, 0).await?;
        }
        return Ok(());
    }
    let settings: RoundSettings = serde_json::from_str(&round.settings).context("reading the round's settings")?;
    let LoadedPair { pair, full_count } = match load_pair(context, &round, settings.seed).await? {
        Ok(loaded) => loaded,
        Err(reason) => {
            tracing::warn!(round = %round.id, reason = %reason, "the round's pair cannot be used");
            rounds::finish_without_version(db, round.id, RoundState::Failed, &reason.to_string()).await?;
            return Ok(());
        }
    };
    let LearningData { trained, interrupted, pair, full_count } =
        train(context, &round, &parent, LoadedPair { pair, full_count }, settings).await?;
    if interrupted {
        anyhow::bail!("the worker stopped mid-round; the round starts again from its parent");
    }
    match trained {
        Ok((outcome, device)) => {
            let as_used = as_used_outputs(&parent, &outcome, &pair, full_count).await?;
            conclude(context, &round, &parent, &pair, &as_used, outcome, device).await
        }
        Err(RoundError::Cancelled) => {
            let step = rounds::get(db, round.id).await?.map(|r| r.step).unwrap_or(0);
            cancelled(db, &round, step).await
        }
        Err(err @ (RoundError::Pair(_) | RoundError::Settings(_) | RoundError::Diverged(_))) => {
            tracing::warn!(round = %round.id, error = %err, "the round failed");
            rounds::finish_without_version(db, round.id, RoundState::Failed, &err.to_string()).await?;
            Ok(())
        }
        Err(err) => Err(err).context("training the round"),
    }
}

async fn cancelled(db: &Database, round: &Round, step: i64) -> anyhow::Result<()> {
    let who = rounds::get(db, round.id).await?.and_then(|r| r.cancel_requested_by).unwrap_or_else(|| "an admin".into());
    let reason = format!("cancelled by {who} at step {step}");
    rounds::finish_without_version(db, round.id, RoundState::Cancelled, &reason).await?;
    tracing::info!(round = %round.id, step, "round cancelled");
    Ok(())
}

/// Why a round's pair can never be used (the round fails saying so).
#[derive(Debug, thiserror::Error)]
enum UnusablePair {
    #[error("series {0} is no longer stored")]
    Gone(String),
    #[error("series {half}: {source}")]
    Series { half: char, source: PairError },
    #[error(transparent)]
    Pair(PairError),
}

/// A round's pair, and the series the patient's images are denoised from.
struct LoadedPair {
    pair: N2nPair,
    /// The full-count series of the pair's study on the pair's voxels: for halves, the
    /// study's first such series (if any); for a single series split in two, that series.
    full_count: Option<Image3>,
}

/// The pair as images; the inner error is a reason the pair can never be used.
async fn load_pair(
    context: &RoundJobContext,
    round: &Round,
    seed: u64,
) -> anyhow::Result<Result<LoadedPair, UnusablePair>> {
    let Some(files_a) = series_files(context, &round.series_a).await? else {
        return Ok(Err(UnusablePair::Gone(round.series_a.clone())));
    };
    let candidates = match round.series_b {
        Some(_) => full_count_candidates(context, &round.series_a, files_a.len()).await?,
        None => Vec::new(),
    };
    let files_b = match &round.series_b {
        Some(uid) => match series_files(context, uid).await? {
            Some(files) => Some(files),
            None => return Ok(Err(UnusablePair::Gone(uid.clone()))),
        },
        None => None,
    };
    let pair = tokio::task::spawn_blocking(move || -> Result<LoadedPair, UnusablePair> {
        let a = series_image(&files_a).map_err(|source| UnusablePair::Series { half: 'A', source })?;
        match files_b {
            Some(files_b) => {
                let full_count = candidates.iter().find_map(|files| {
                    series_image(files).ok().filter(|full| full.check_same_geometry(&a).is_ok()).map(|full| full.image)
                });
                let b = series_image(&files_b).map_err(|source| UnusablePair::Series { half: 'B', source })?;
                let pair = pair_of(a, b).map_err(UnusablePair::Pair)?;
                Ok(LoadedPair { pair, full_count })
            }
            None => Ok(LoadedPair { pair: neighbour_subsampled(&a.image, seed), full_count: Some(a.image) }),
        }
    })
    .await
    .context("reading the pair")?;
    Ok(pair)
}

/// The files of the full-count series of `half_a`'s study with as many instances as it has
/// (at most [`MAX_FULL_COUNT_CANDIDATES`], oldest first).
async fn full_count_candidates(
    context: &RoundJobContext,
    half_a: &str,
    instances: usize,
) -> anyhow::Result<Vec<Vec<Vec<u8>>>> {
    let Some(half) = series_processing::get(&context.db, half_a).await? else { return Ok(Vec::new()) };
    let mut candidates = Vec::new();
    for series in series_processing::full_count_series(&context.db, &half.study_uid).await? {
        if usize::try_from(series.received_instances).ok() != Some(instances) {
            continue;
        }
        if let Some(files) = series_files(context, &series.series_uid).await? {
            candidates.push(files);
        }
        if candidates.len() == MAX_FULL_COUNT_CANDIDATES {
            break;
        }
    }
    Ok(candidates)
}

/// A study rarely holds more than one PET series like its halves; reading more costs time.
const MAX_FULL_COUNT_CANDIDATES: usize = 3;

/// The series the gate checks as used, and both networks' outputs for it: the full-count
/// series where there is one (denoised here by both), else half A (denoised in validation).
struct AsUsedImages {
    series: AsUsedSeries,
    input: Image3,
    parent: Image3,
    new: Image3,
}

async fn as_used_outputs(
    parent: &ActiveModel,
    outcome: &RoundOutcome,
    pair: &N2nPair,
    full_count: Option<Image3>,
) -> anyhow::Result<AsUsedImages> {
    let Some(input) = full_count else {
        return Ok(AsUsedImages {
            series: AsUsedSeries::HalfA,
            input: pair.a.clone(),
            parent: outcome.parent_outputs.a.clone(),
            new: outcome.outputs.a.clone(),
        });
    };
    let (parent_model, new_model) = (parent.model.clone(), outcome.model.clone());
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let parent = denoise_with_burn(&parent_model, &input).context("denoising the full-count series (parent)")?;
        let new = denoise_with_burn(&new_model, &input).context("denoising the full-count series (new version)")?;
        Ok(AsUsedImages { series: AsUsedSeries::FullCount, input, parent, new })
    })
    .await
    .context("the gate's denoising thread stopped unexpectedly")?
}

async fn series_files(context: &RoundJobContext, series_uid: &str) -> anyhow::Result<Option<Vec<Vec<u8>>>> {
    let Some(series) = series_processing::get(&context.db, series_uid).await? else { return Ok(None) };
    let files = read_series_files(&context.db, &context.blobs, &series.study_uid, series_uid).await?;
    Ok((!files.is_empty()).then_some(files))
}

/// Writes progress to the round every `every` (and at the first and last step) and asks
/// at every step whether the round should stop.
struct DatabaseProgress {
    runtime: Handle,
    db: Database,
    round_id: RoundId,
    every: Duration,
    started: Instant,
    last_write: Option<Instant>,
    parent_loss: Option<f64>,
    shutdown: watch::Receiver<bool>,
    /// The process is stopping (not an admin's cancel).
    interrupted: bool,
}

impl DatabaseProgress {
    fn write(&mut self, progress: &Progress) -> Flow {
        self.last_write = Some(Instant::now());
        match self.runtime.block_on(rounds::report_progress(&self.db, self.round_id, progress)) {
            Ok(true) => Flow::Cancel,
            Ok(false) => Flow::Continue,
            Err(err) => {
                tracing::warn!(error = %err, "could not record the round's progress; going on");
                Flow::Continue
            }
        }
    }
}

impl RoundObserver for DatabaseProgress {
    fn step(&mut self, step: usize, total: usize, loss: f64) -> Flow {
        if *self.shutdown.borrow() {
            self.interrupted = true;
            return Flow::Cancel;
        }
        let due = step <= 1 || step >= total || self.last_write.is_none_or(|at| at.elapsed() >= self.every);
        if due {
            let per_step = self.started.elapsed().as_secs_f64() / step.max(1) as f64;
            let progress = Progress {
                step: i64::try_from(step).unwrap_or(i64::MAX),
                loss: Some(loss),
                validation_loss_parent: self.parent_loss,
                validation_loss: None,
                eta_seconds: Some(per_step * total.saturating_sub(step) as f64),
            };
            return self.write(&progress);
        }
        match self.runtime.block_on(rounds::should_stop(&self.db, self.round_id)) {
            Ok(true) => Flow::Cancel,
            Ok(false) => Flow::Continue,
            Err(err) => {
                tracing::warn!(error = %err, "could not look for a cancel request; going on");
                Flow::Continue
            }
        }
    }

    fn parent_validated(&mut self, loss: f64) {
        self.parent_loss = Some(loss);
        self.started = Instant::now();
        let _ = self.write(&Progress { validation_loss_parent: Some(loss), ..Progress::default() });
    }
}

type Trained = Result<(RoundOutcome, TrainingDevice), RoundError>;

/// What training hands back: its result, whether the process's shutdown interrupted it,
/// and the images the gate needs.
struct LearningData {
    trained: Trained,
    interrupted: bool,
    pair: N2nPair,
    full_count: Option<Image3>,
}

/// Runs the round's training on a blocking thread, carrying the job's span.
async fn train(
    context: &RoundJobContext,
    round: &Round,
    parent: &ActiveModel,
    loaded: LoadedPair,
    settings: RoundSettings,
) -> anyhow::Result<LearningData> {
    let mut observer = DatabaseProgress {
        runtime: Handle::current(),
        db: context.db.clone(),
        round_id: round.id,
        every: context.learning.progress_interval,
        started: Instant::now(),
        last_write: None,
        parent_loss: None,
        shutdown: context.shutdown.clone(),
        interrupted: false,
    };
    let model = parent.model.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let LoadedPair { pair, full_count } = loaded;
        let trained = run_round_on_best_device(&model, &pair, full_count.as_ref(), &settings, &mut observer);
        LearningData { trained, interrupted: observer.interrupted, pair, full_count }
    })
    .await
    .context("the training thread stopped unexpectedly")
}

/// Gates the new network, stores its version with the verdict (activating it when it
/// passed), audits the outcome and follows up.
async fn conclude(
    context: &RoundJobContext,
    round: &Round,
    parent: &ActiveModel,
    pair: &N2nPair,
    as_used: &AsUsedImages,
    outcome: RoundOutcome,
    device: TrainingDevice,
) -> anyhow::Result<()> {
    let db = &context.db;
    let report = &outcome.report;
    let evidence = RoundEvidence {
        as_used: AsUsedEvidence {
            series: as_used.series,
            input: &as_used.input,
            parent: &as_used.parent,
            new: &as_used.new,
        },
        pair,
        parent: &outcome.parent_outputs,
        new: &outcome.outputs,
        held_out: &report.held_out,
        validation_loss_parent: report.validation_loss_parent,
        validation_loss: report.validation_loss,
    };
    let verdict = gate::judge(&evidence, &context.learning.gate);
    let version_report = VersionReport {
        round_id: round.id,
        pair_source: &round.pair_source,
        series: [Some(&round.series_a), round.series_b.as_deref()],
        device,
        round: report,
        gate: &verdict,
    };
    let report_json = serde_json::to_string(&version_report).context("writing the version's report")?;
    let gate_json = serde_json::to_string(&verdict).context("writing the gate's verdict")?;
    let config = serde_json::to_string(&outcome.model.config).context("writing the version's config")?;
    let weights = outcome.model.weights.to_safetensors().context("writing the version's weights")?;
    let name = format!("round {}", round.id);
    let stored = rounds::finish_with_version(
        db,
        round.id,
        &Verdict {
            version: NewModelVersion {
                name: &name,
                source: ModelSource::Round,
                sha256: &outcome.model.sha256,
                config: &config,
                weights: &weights,
                parent_id: parent.version_id,
                patient_key: Some(&round.patient_key),
                report: Some(&report_json),
                created_by: Some(&round.requested_by),
            },
            passed: verdict.passed,
            gate: &gate_json,
            validation_loss: report.validation_loss,
            activated_by: &format!("{SYSTEM_ACTOR} (round {})", round.id),
        },
    )
    .await?;
    let Some(version) = stored else {
        // An admin cancelled while the gate ran: nothing was stored.
        let step = rounds::get(db, round.id).await?.map(|r| r.step).unwrap_or(0);
        return cancelled(db, round, step).await;
    };
    let (action, resource) = if verdict.passed {
        ("model.activate", format!("/api/v1/patients/{}/models/{}/activate", round.patient_key, version.id))
    } else {
        ("model.reject", format!("/api/v1/models/{}", version.id))
    };
    audit::append(
        db,
        &NewAuditEvent {
            actor: SYSTEM_ACTOR,
            action,
            resource: &resource,
            patient_key: Some(&round.patient_key),
            outcome: Outcome::Success,
            request_id: None,
            detail: None,
        },
    )
    .await?;
    tracing::info!(
        round = %round.id,
        version = %version.id,
        passed = verdict.passed,
        reasons = ?verdict.reasons,
        "round finished"
    );
    let finished = rounds::get(db, round.id).await?.context("the round vanished after it finished")?;
    follow_up(context, &finished).await
}

/// After activation: denoise the patient's latest series again with the new version, once.
async fn follow_up(context: &RoundJobContext, round: &Round) -> anyhow::Result<()> {
    if round.state != RoundState::Activated
        || !context.learning.redenoise_after_round
        || round.redenoised_series_uid.is_some()
    {
        return Ok(());
    }
    let db = &context.db;
    let Some(latest) = series_processing::latest_denoised(db, &round.patient_key).await? else {
        tracing::info!(round = %round.id, "the patient has no denoised series to show the new version on");
        return Ok(());
    };
    let requested_by = format!("{SYSTEM_ACTOR} (round {})", round.id);
    match enqueue_denoise(db, &DenoisePayload::new(&latest.series_uid, &requested_by), true).await? {
        Enqueued::Queued(job) => tracing::info!(round = %round.id, %job, "re-denoising the latest series"),
        Enqueued::AlreadyActive(job) => tracing::info!(round = %round.id, %job, "the latest series is already queued"),
        Enqueued::NotEligible => return Ok(()),
    }
    rounds::note_redenoised(db, round.id, &latest.series_uid).await?;
    Ok(())
}
