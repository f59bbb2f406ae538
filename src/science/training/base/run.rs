//! The training loop of the base model: Adam on MSE (lesion voxels optionally weighted) over
//! random patch batches, every parameter trainable, with a checkpoint every few steps and
//! resumption from the last one; at the end the BatchNorm running statistics are
//! re-estimated over many batches.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::batch_norm::precise_batch_norm;
use super::checkpoint::{self, CheckpointState, LossPoint};
use super::data::TrainingPair;
use super::patches::{PatchSampler, PatchSampling};
use super::reserve::{KernelReserve, ReserveSettings};
use crate::science::model::backend::{TrainingDevice, TrainingWork, on_best_device};
use crate::science::model::config::DnCnnConfig;
use crate::science::model::directory::StoredModel;
use crate::science::model::network::DnCnn;
use crate::science::training::trainer::{OptimizerSettings, Trainer};
use crate::science::training::update_plan::UpdatePlan;

/// How the base model is trained.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BaseTrainingSettings {
    pub config: DnCnnConfig,
    pub steps: usize,
    pub batch: usize,
    pub patch: usize,
    pub learning_rate: f64,
    /// The learning rate of the final steps (see [`LearningRateDecay`]).
    pub decay: LearningRateDecay,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Share of the patches drawn around a lesion (see [`PatchSampling`]).
    pub lesion_share: f64,
    /// Weight of the squared error at lesion voxels (1: plain MSE).
    pub lesion_weight: f64,
    /// Coefficient of the group lasso on input channels (see
    /// [`crate::science::training::trainer::channel_group_lasso`]); 0: none.
    pub channel_sparsity: f64,
    /// Channels set aside for online learning (see [`KernelReserve`]); needs `start_from`.
    pub reserve: Option<ReserveSettings>,
    /// Batches whose statistics replace the BatchNorm running statistics at the end (see
    /// [`precise_batch_norm`]); 0 keeps training's exponential average.
    pub batch_norm_batches: usize,
    /// Seeds the initial weights and the patch draws.
    pub seed: u64,
    /// Weights to start from instead of freshly initialised ones.
    #[serde(skip)]
    pub start_from: Option<StoredModel>,
}

/// The last `final_share` of the steps run at `factor` × the learning rate. With a constant
/// rate the last weights are one noisy point of Adam's walk, and a model trained that way
/// kept an offset in low-uptake tissue (docs/models.md).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LearningRateDecay {
    pub final_share: f64,
    pub factor: f64,
}

impl BaseTrainingSettings {
    /// The learning rate of step `step` (0-based).
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        let decayed_steps = (self.steps as f64 * self.decay.final_share.clamp(0.0, 1.0)).round() as usize;
        if step >= self.steps.saturating_sub(decayed_steps) {
            self.learning_rate * self.decay.factor
        } else {
            self.learning_rate
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct TrainingOutcome {
    pub model: StoredModel,
    pub losses: Vec<LossPoint>,
    /// Training time over all sessions (s).
    pub seconds: f64,
    /// The step a checkpoint let this session start from.
    pub resumed_from: Option<usize>,
    pub device: TrainingDevice,
}

/// Trains (or resumes training) on `pairs`; `fingerprint` names the data and settings so a
/// checkpoint of another run is never resumed. `on_step` sees (step, loss) after each step.
pub fn train_base(
    pairs: &[TrainingPair],
    settings: &BaseTrainingSettings,
    checkpoint_dir: &Path,
    fingerprint: &str,
    on_step: &mut dyn FnMut(usize, f64),
) -> anyhow::Result<TrainingOutcome> {
    anyhow::ensure!(!pairs.is_empty(), "no training pairs");
    anyhow::ensure!(settings.batch > 0 && settings.patch >= 8, "batch must be positive and patch at least 8");
    anyhow::ensure!((0.0..=1.0).contains(&settings.lesion_share), "the lesion share must lie in [0, 1]");
    anyhow::ensure!(settings.lesion_weight >= 1.0, "the lesion weight must be at least 1");
    anyhow::ensure!(settings.channel_sparsity >= 0.0, "the channel sparsity must not be negative");
    let smallest = pairs.iter().map(|p| p.target.grid.size).min().unwrap_or(0);
    anyhow::ensure!(smallest >= settings.patch, "patches of {} pixels do not fit slices of {smallest}", settings.patch);
    settings.config.validate()?;
    if let Some(reserve) = &settings.reserve {
        reserve.validate()?;
        anyhow::ensure!(
            settings.start_from.is_some(),
            "a kernel reserve is chosen by KSE of trained weights: give the model to start from"
        );
    }
    struct Work<'a> {
        pairs: &'a [TrainingPair],
        settings: &'a BaseTrainingSettings,
        checkpoint_dir: &'a Path,
        fingerprint: &'a str,
        on_step: &'a mut dyn FnMut(usize, f64),
    }
    impl TrainingWork for Work<'_> {
        type Output = anyhow::Result<TrainingOutcome>;

        fn run<B: AutodiffBackend>(self, device: TrainingDevice) -> Self::Output {
            train_on::<B>(self.pairs, self.settings, self.checkpoint_dir, self.fingerprint, self.on_step, device)
        }
    }
    on_best_device(Work { pairs, settings, checkpoint_dir, fingerprint, on_step }).0
}

fn train_on<B: AutodiffBackend>(
    pairs: &[TrainingPair],
    settings: &BaseTrainingSettings,
    checkpoint_dir: &Path,
    fingerprint: &str,
    on_step: &mut dyn FnMut(usize, f64),
    device_kind: TrainingDevice,
) -> anyhow::Result<TrainingOutcome> {
    let device = B::Device::default();
    let resumed = checkpoint::load(checkpoint_dir)?.filter(|(_, state)| state.fingerprint == fingerprint);
    let (network, mut state, resumed_from) = match resumed {
        Some((model, state)) => {
            tracing::info!(step = state.step, "resuming base-model training from its checkpoint");
            let network = DnCnn::<B>::from_weights(&settings.config, &model.weights, &device)
                .context("loading the checkpoint's weights")?;
            let step = state.step;
            (network, state, Some(step))
        }
        None => {
            B::seed(&device, settings.seed);
            let state =
                CheckpointState { step: 0, losses: Vec::new(), seconds: 0.0, fingerprint: fingerprint.to_owned() };
            let network = match &settings.start_from {
                Some(start) => DnCnn::<B>::from_weights(&settings.config, &start.weights, &device)
                    .context("loading the weights to start from")?,
                None => DnCnn::<B>::init(&settings.config, &device),
            };
            (network, state, None)
        }
    };
    // Chosen from the starting weights, so a resumed run holds the same channels in reserve.
    let reserve = match (&settings.reserve, &settings.start_from) {
        (Some(reserve), Some(start)) => Some(KernelReserve::choose(&start.weights, *reserve)?),
        _ => None,
    };
    // The reserve's bounds close over the first half of the steps.
    let ramp_steps = (settings.steps / 2).max(1);
    let plan = UpdatePlan::everything(&network);
    let optimizer = OptimizerSettings {
        learning_rate: settings.learning_rate,
        channel_sparsity: settings.channel_sparsity,
        ..OptimizerSettings::default()
    };
    let mut trainer = Trainer::new(network, plan, optimizer);
    let sampling = PatchSampling {
        batch: settings.batch,
        patch: settings.patch,
        window: settings.config.input_slices,
        lesion_share: settings.lesion_share,
    };
    let sampler = PatchSampler::new(pairs, sampling);
    let mut session_started = Instant::now();
    let mut seconds_before = state.seconds;
    while state.step < settings.steps {
        // One random stream per step: a resumed run draws exactly the patches it would have.
        let mut rng = StdRng::seed_from_u64(settings.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ state.step as u64);
        let batch = sampler.draw(&mut rng);
        let input = Tensor::<B, 4>::from_data(TensorData::new(batch.input, batch.shape), &device);
        let target = Tensor::<B, 4>::from_data(TensorData::new(batch.target, batch.shape), &device);
        let weight = (settings.lesion_weight != 1.0).then(|| {
            let extra = (settings.lesion_weight - 1.0) as f32;
            let weight = batch.lesion.iter().map(|lesion| 1.0 + extra * lesion).collect::<Vec<f32>>();
            Tensor::<B, 4>::from_data(TensorData::new(weight, batch.shape), &device)
        });
        trainer.set_learning_rate(settings.learning_rate_at(state.step));
        let loss = trainer.step_weighted(input, target, weight);
        if let Some(reserve) = &reserve {
            let progress = (state.step + 1) as f64 / ramp_steps as f64;
            let scalings = reserve.scaling(&trainer.network().to_weights(), progress)?;
            trainer.map_network(|mut network| {
                for s in &scalings {
                    network = network
                        .scale_input_channels(s.consumer - 1, &s.outgoing)
                        .scale_output_channels(s.consumer - 2, &s.emitted);
                }
                network
            });
        }
        anyhow::ensure!(loss.is_finite(), "the loss became {loss} at step {}: lower the learning rate", state.step);
        state.step += 1;
        state.losses.push(LossPoint { step: state.step, loss });
        on_step(state.step, loss);
        if state.step % settings.checkpoint_every.max(1) == 0 || state.step == settings.steps {
            state.seconds = seconds_before + session_started.elapsed().as_secs_f64();
            seconds_before = state.seconds;
            session_started = Instant::now();
            let model = StoredModel::new(settings.config.clone(), trainer.network().to_weights())?;
            checkpoint::save(checkpoint_dir, &model, &state)?;
        }
    }
    let trained = StoredModel::new(settings.config.clone(), trainer.network().to_weights())?;
    let model = precise_batch_norm(&trained, &sampler, settings.batch_norm_batches, settings.seed)
        .context("re-estimating the BatchNorm statistics")?;
    state.seconds = seconds_before + session_started.elapsed().as_secs_f64();
    Ok(TrainingOutcome { model, losses: state.losses, seconds: state.seconds, resumed_from, device: device_kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_share_of_the_steps_runs_at_the_decayed_rate() {
        let settings = BaseTrainingSettings {
            config: DnCnnConfig::scaled(0.25),
            steps: 100,
            batch: 1,
            patch: 8,
            learning_rate: 1e-3,
            decay: LearningRateDecay { final_share: 0.1, factor: 0.1 },
            checkpoint_every: 10,
            lesion_share: 0.0,
            lesion_weight: 1.0,
            channel_sparsity: 0.0,
            reserve: None,
            batch_norm_batches: 0,
            seed: 1,
            start_from: None,
        };
        assert_eq!(settings.learning_rate_at(0), 1e-3);
        assert_eq!(settings.learning_rate_at(89), 1e-3);
        assert!((settings.learning_rate_at(90) - 1e-4).abs() < 1e-12);
        assert!((settings.learning_rate_at(99) - 1e-4).abs() < 1e-12);
        let constant = BaseTrainingSettings { decay: LearningRateDecay { final_share: 0.0, factor: 0.1 }, ..settings };
        assert_eq!(constant.learning_rate_at(99), 1e-3);
    }
}
