//! Fine-tuning a copy of a parent network on any input → target pairs, restricted as the
//! round's kind says: TGD (KSE masks, one or more passes), TGD's parameter-mask variant, or
//! FT-net's last three convolutions. An online-learning round calls it with the two N2N
//! directions of one scan; the paper's evaluation calls it with supervised low-count →
//! high-count pairs of a few studies of the new reconstruction (TGD-net and FT-net).

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::base::TrainingPair;
use super::base::batch_norm::precise_batch_norm;
use super::base::checkpoint::LossPoint;
use super::base::patches::{PatchSampler, PatchSampling};
use super::round_control::{Flow, RoundError, RoundObserver};
use super::round_settings::{RoundKind, RoundSettings};
use super::tgd_passes::{PassError, run_tgd_passes};
use super::trainer::{AnchorBatch, BatchStatistics, OptimizerSettings, Trainer};
use super::update_plan::{RunningStatistics, UpdatePlan, UpdateRule};
use crate::science::model::backend::{CpuBackend, TrainingDevice, TrainingWork, on_best_device};
use crate::science::model::config::DnCnnConfig;
use crate::science::model::directory::StoredModel;
use crate::science::model::network::DnCnn;
use crate::science::model::tgd_mask::NetworkMask;

/// The fine-tuned weights and what the training did.
#[derive(Debug, Clone)]
pub struct FineTuned {
    pub model: StoredModel,
    /// Each TGD pass's masks (empty for a fine-tune of the last layers).
    pub passes: Vec<NetworkMask>,
    /// Share of all parameters any pass could change.
    pub fraction_retrained: f64,
    pub losses: Vec<LossPoint>,
}

/// What a fine-tune learns from: input → target pairs, and optionally the anchor (the series
/// that gets denoised, with the reference its block means are held to as its target; see
/// [`RoundSettings::anchor_weight`]).
#[derive(Debug, Clone, Copy)]
pub struct FineTuneData<'a> {
    pub pairs: &'a [TrainingPair],
    pub anchor: Option<&'a TrainingPair>,
}

/// Fine-tunes `parent` on `data` (patches drawn as in base training, from each pair's
/// `train_slices`) where [`TrainingDevice::choose`] says.
pub fn fine_tune_on_best_device(
    parent: &StoredModel,
    data: FineTuneData<'_>,
    settings: &RoundSettings,
    observer: &mut dyn RoundObserver,
) -> Result<(FineTuned, TrainingDevice), RoundError> {
    struct Work<'a> {
        parent: &'a StoredModel,
        data: FineTuneData<'a>,
        settings: &'a RoundSettings,
        observer: &'a mut dyn RoundObserver,
    }
    impl TrainingWork for Work<'_> {
        type Output = Result<FineTuned, RoundError>;

        fn run<B: AutodiffBackend>(self, _device: TrainingDevice) -> Self::Output {
            fine_tune::<B>(self.parent, self.data, self.settings, self.observer)
        }
    }
    let (tuned, device) = on_best_device(Work { parent, data, settings, observer });
    Ok((tuned?, device))
}

/// Fine-tunes `parent` on `data` on backend `B`; the observer sees every step and may
/// cancel between steps.
pub fn fine_tune<B: AutodiffBackend>(
    parent: &StoredModel,
    data: FineTuneData<'_>,
    settings: &RoundSettings,
    observer: &mut dyn RoundObserver,
) -> Result<FineTuned, RoundError> {
    let pairs = data.pairs;
    settings.validate()?;
    if pairs.is_empty() {
        return Err(RoundError::Pair("no training pairs".into()));
    }
    let device = B::Device::default();
    let network = DnCnn::<B>::from_weights(&parent.config, &parent.weights, &device)?;
    let optimizer = OptimizerSettings {
        learning_rate: settings.learning_rate,
        weight_decay: 0.0,
        batch_statistics: settings.batch_statistics,
        channel_sparsity: 0.0,
    };
    let total = settings.total_steps();
    let mut losses = Vec::with_capacity(total);
    let mut step = 0usize;
    // A round's pairs know no lesions, only the hot spots found in its halves (when asked
    // for, `hot_spot_share`); the paper's fine-tuning (eval paper) drew uniformly.
    let sampler = PatchSampler::new(pairs, round_sampling(parent, settings));
    let anchor = data.anchor.filter(|_| settings.anchor_weight > 0.0);
    let anchor_sampler = anchor.map(|anchor| {
        PatchSampler::new(
            std::slice::from_ref(anchor),
            PatchSampling { lesion_share: 0.0, ..round_sampling(parent, settings) },
        )
    });
    let tensors = |batch: super::base::patches::PatchBatch| {
        (
            Tensor::<B, 4>::from_data(TensorData::new(batch.input, batch.shape), &device),
            Tensor::<B, 4>::from_data(TensorData::new(batch.target, batch.shape), &device),
        )
    };
    let mut train = |trainer: &mut Trainer<B>| -> Result<(), RoundError> {
        for _ in 0..settings.steps_per_pass {
            let (input, target) = tensors(sampler.draw(&mut batch_rng(settings.seed, step)));
            let loss = match &anchor_sampler {
                Some(anchor_sampler) => {
                    let (input_held, reference) =
                        tensors(anchor_sampler.draw(&mut batch_rng(settings.seed ^ ANCHOR_DRAWS, step)));
                    let anchor = AnchorBatch {
                        input: input_held,
                        reference,
                        block: settings.anchor_block,
                        weight: settings.anchor_weight,
                    };
                    trainer.step_anchored(input, target, anchor)
                }
                None => trainer.step(input, target),
            };
            if !loss.is_finite() {
                return Err(RoundError::Diverged(loss));
            }
            step += 1;
            losses.push(LossPoint { step, loss });
            if observer.step(step, total, loss) == Flow::Cancel {
                return Err(RoundError::Cancelled);
            }
        }
        Ok(())
    };
    let (network, passes, retrained) = match settings.kind {
        RoundKind::FineTuneLastLayers => {
            let plan = UpdatePlan::last_layers(&network, 3);
            let retrained = plan.retrain.clone();
            let mut trainer = Trainer::new(network, plan, optimizer);
            train(&mut trainer)?;
            (trainer.into_network(), Vec::new(), retrained)
        }
        RoundKind::Tgd | RoundKind::TgdParameterMask => {
            let rule = if settings.kind == RoundKind::Tgd { UpdateRule::TgdLayer } else { UpdateRule::ParameterMask };
            let (network, report) =
                run_tgd_passes(network, settings.tgd_passes, settings.phi, rule, optimizer, |_, trainer| {
                    train(trainer)
                })
                .map_err(|e| match e {
                    PassError::Weights(e) => RoundError::Weights(e),
                    PassError::Training(e) => e,
                })?;
            (network, report.passes, report.union)
        }
    };
    let fraction_retrained = plan_fraction(&parent.config, &retrained);
    let trained = StoredModel::new(parent.config.clone(), network.to_weights())?;
    let plan = UpdatePlan { retrain: retrained, rule: UpdateRule::ParameterMask };
    let model = average_retrained_statistics(trained, &sampler, settings, &plan)?;
    Ok(FineTuned { model, passes, fraction_retrained, losses })
}

/// Mixed into the seed of the anchor's draws, so they are not the pairs' places.
const ANCHOR_DRAWS: u64 = 0xA5C4_07D1_5EA5_E77E;

/// How a round draws its patches from its pairs.
pub fn round_sampling(parent: &StoredModel, settings: &RoundSettings) -> PatchSampling {
    PatchSampling {
        batch: settings.batch,
        patch: settings.patch,
        window: parent.config.input_slices,
        lesion_share: settings.hot_spot_share,
    }
}

/// The random numbers behind a round's batch at `step` (counted from 0 over all passes):
/// they depend on the seed and the step alone, so any batch can be drawn again.
pub fn batch_rng(seed: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step as u64)
}

/// The mean loss of `model` (inference as it denoises, running statistics) on the batches
/// a round with `settings` drew at `steps`: the same batches scored for two networks tell
/// whether a round lowered its own objective, which the losses it saw while stepping (each
/// on its own batch, by a network that kept changing) cannot.
pub fn mean_batch_loss(
    model: &StoredModel,
    sampler: &PatchSampler<'_>,
    settings: &RoundSettings,
    steps: std::ops::Range<usize>,
) -> Result<f64, RoundError> {
    let device = Default::default();
    let network = DnCnn::<CpuBackend>::from_weights(&model.config, &model.weights, &device)?;
    let gates = crate::science::model::network::TgdGates::none();
    let count = steps.len();
    let mut sum = 0.0;
    for step in steps {
        let batch = sampler.draw(&mut batch_rng(settings.seed, step));
        let input = Tensor::<CpuBackend, 4>::from_data(TensorData::new(batch.input, batch.shape), &device);
        let target = Tensor::<CpuBackend, 4>::from_data(TensorData::new(batch.target, batch.shape), &device);
        let output = network.forward_gated_frozen_statistics(input, &gates);
        sum += super::trainer::mse(output, target).into_scalar().elem::<f64>();
    }
    Ok(sum / count.max(1) as f64)
}

/// `trained` with the running statistics of the channels `plan` retrained replaced by the
/// mean of `settings.batch_norm_batches` batches' statistics ([`precise_batch_norm`]); the
/// plan puts every kept channel's back, bit for bit, as it does after every step.
fn average_retrained_statistics(
    trained: StoredModel,
    sampler: &PatchSampler<'_>,
    settings: &RoundSettings,
    plan: &UpdatePlan,
) -> Result<StoredModel, RoundError> {
    if settings.batch_norm_batches == 0 || settings.batch_statistics == BatchStatistics::Frozen {
        return Ok(trained);
    }
    let averaged = precise_batch_norm(&trained, sampler, settings.batch_norm_batches, settings.seed)
        .map_err(RoundError::Statistics)?;
    let device = Default::default();
    let steps_only = DnCnn::<CpuBackend>::from_weights(&trained.config, &trained.weights, &device)?;
    let mut network = DnCnn::<CpuBackend>::from_weights(&averaged.config, &averaged.weights, &device)?;
    plan.restore_running_statistics(&mut network, &RunningStatistics::of(&steps_only));
    Ok(StoredModel::new(trained.config, network.to_weights())?)
}

/// Share of all parameters in the retrained output channels of `retrain`.
pub fn plan_fraction(config: &DnCnnConfig, retrain: &[Vec<bool>]) -> f64 {
    let layers = config.layers();
    let total: usize = layers.iter().map(|l| l.parameters()).sum();
    let retrained: usize = layers
        .iter()
        .zip(retrain)
        .map(|(layer, channels)| {
            let per_channel = layer.parameters() / layer.out_channels.max(1);
            per_channel * channels.iter().filter(|c| **c).count()
        })
        .sum();
    retrained as f64 / total.max(1) as f64
}
