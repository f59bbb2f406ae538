//! One online-learning round (docs/science.md §4–5): a copy of the parent network fine-tuned
//! with Noise2Noise on two independent reconstructions A and B of one scan (f(A) → B and
//! f(B) → A), restricted by TGD so that only kernels KSE finds meaningless change.
//!
//! A contiguous block of slices is held out: patches never come from it, and the N2N loss
//! on it, for the parent and for the new network, is what the gate compares. Knows nothing
//! of the database or the queue: callers observe progress and may cancel between steps.

use std::ops::Range;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;

use super::base::TrainingPair;
use super::base::checkpoint::LossPoint;
use super::fine_tune::fine_tune;
pub use super::round_control::{Flow, RoundError, RoundObserver};
pub use super::round_settings::{InvalidRoundSettings, RoundKind, RoundSettings};
use crate::science::image::Image3;
use crate::science::model::backend::{TrainingDevice, TrainingWork, on_best_device};
use crate::science::model::burn_denoise::denoise_with_burn;
use crate::science::model::directory::StoredModel;
use crate::science::model::tgd_mask::NetworkMask;

/// Two independent reconstructions of one scan, normalised, on one grid.
#[derive(Debug, Clone)]
pub struct N2nPair {
    pub a: Image3,
    pub b: Image3,
}

/// What a round did, for the model version's report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoundReport {
    pub settings: RoundSettings,
    /// Each TGD pass's masks per layer (empty for a fine-tune of the last layers).
    pub passes: Vec<NetworkMask>,
    /// Share of all parameters any pass could change.
    pub fraction_retrained: f64,
    pub losses: Vec<LossPoint>,
    /// Held-out slices (z indices).
    pub held_out: Range<usize>,
    /// N2N loss on the held-out slices: parent, then the new network.
    pub validation_loss_parent: f64,
    pub validation_loss: f64,
    pub seconds: f64,
}

/// The new weights and their report.
#[derive(Debug, Clone)]
pub struct RoundOutcome {
    pub model: StoredModel,
    pub report: RoundReport,
    /// The parent's and the new network's outputs for half A, from validation: the gate
    /// compares them on the held-out slices without running either network again.
    pub parent_output_a: Image3,
    pub output_a: Image3,
}

/// The held-out block: `fraction` of the slices in the middle of the volume (at least one).
pub fn held_out_slices(slices: usize, fraction: f64) -> Range<usize> {
    let count = ((slices as f64 * fraction).round() as usize).clamp(1, slices.saturating_sub(1).max(1));
    let start = (slices - count) / 2;
    start..start + count
}

/// The N2N loss of `model` on the held-out slices (mean of |f(A) − B|² and |f(B) − A|²),
/// and f(A).
pub fn validation_loss(
    model: &StoredModel,
    pair: &N2nPair,
    held_out: &Range<usize>,
) -> Result<(f64, Image3), RoundError> {
    let plane = pair.a.grid.pixels_per_slice();
    let range = held_out.start * plane..held_out.end * plane;
    let denoise = |input: &Image3| denoise_with_burn(model, input).map_err(RoundError::Validation);
    let squared_error = |output: &Image3, target: &Image3| {
        let sum: f64 = output.data[range.clone()]
            .iter()
            .zip(&target.data[range.clone()])
            .map(|(o, t)| (f64::from(*o) - f64::from(*t)).powi(2))
            .sum();
        sum / range.len() as f64
    };
    let (output_a, output_b) = (denoise(&pair.a)?, denoise(&pair.b)?);
    let loss = (squared_error(&output_a, &pair.b) + squared_error(&output_b, &pair.a)) / 2.0;
    Ok((loss, output_a))
}

/// Runs the round where [`TrainingDevice::choose`] says (CUDA when built with it and a
/// driver is present, else the CPU); returns the outcome and where it ran.
pub fn run_round_on_best_device(
    parent: &StoredModel,
    pair: &N2nPair,
    settings: &RoundSettings,
    observer: &mut dyn RoundObserver,
) -> Result<(RoundOutcome, TrainingDevice), RoundError> {
    struct Work<'a> {
        parent: &'a StoredModel,
        pair: &'a N2nPair,
        settings: &'a RoundSettings,
        observer: &'a mut dyn RoundObserver,
    }
    impl TrainingWork for Work<'_> {
        type Output = Result<RoundOutcome, RoundError>;

        fn run<B: AutodiffBackend>(self, _device: TrainingDevice) -> Self::Output {
            run_round::<B>(self.parent, self.pair, self.settings, self.observer)
        }
    }
    let (outcome, device) = on_best_device(Work { parent, pair, settings, observer });
    Ok((outcome?, device))
}

/// Runs the round on `B` (the CPU backend, or CUDA where built and present).
pub fn run_round<B: AutodiffBackend>(
    parent: &StoredModel,
    pair: &N2nPair,
    settings: &RoundSettings,
    observer: &mut dyn RoundObserver,
) -> Result<RoundOutcome, RoundError> {
    settings.validate()?;
    let grid = pair.a.grid;
    if pair.b.grid != grid {
        return Err(RoundError::Pair("the two halves differ in geometry".into()));
    }
    if grid.size < settings.patch || grid.slices < 4 {
        return Err(RoundError::Pair(format!(
            "{}×{}×{} is too small for {}-pixel patches and a held-out block",
            grid.size, grid.size, grid.slices, settings.patch
        )));
    }
    let started = Instant::now();
    let held_out = held_out_slices(grid.slices, settings.validation_fraction);
    let (validation_loss_parent, parent_output_a) = validation_loss(parent, pair, &held_out)?;
    observer.parent_validated(validation_loss_parent);

    // Both directions, patches only from the slices outside the held-out block (the block
    // sits in the middle, so training takes the part below it and the part above it).
    let mut pairs = Vec::new();
    for (input, target) in [(&pair.a, &pair.b), (&pair.b, &pair.a)] {
        for part in [0..held_out.start, held_out.end..grid.slices] {
            if !part.is_empty() {
                pairs.push(TrainingPair {
                    name: "n2n".into(),
                    inputs: vec![(1.0, input.clone())],
                    target: target.clone(),
                    regions: None,
                    train_slices: Some(part),
                });
            }
        }
    }

    let tuned = fine_tune::<B>(parent, &pairs, settings, observer)?;
    let model = tuned.model;
    let (passes, fraction_retrained, losses) = (tuned.passes, tuned.fraction_retrained, tuned.losses);
    let (validation_loss, output_a) = validation_loss(&model, pair, &held_out)?;
    let report = RoundReport {
        settings: settings.clone(),
        passes,
        fraction_retrained,
        losses,
        held_out,
        validation_loss_parent,
        validation_loss,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(RoundOutcome { model, report, parent_output_a, output_a })
}
