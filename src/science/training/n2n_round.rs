//! One online-learning round (docs/science.md §4–5): a copy of the parent network fine-tuned
//! with Noise2Noise on two independent reconstructions A and B of one scan (f(A) → B and
//! f(B) → A), restricted by TGD so that only kernels KSE finds meaningless change.
//!
//! Slices spread through the volume are held out (one in every few): patches are never
//! centred on them, and the N2N losses on them, for the parent and for the new network, are
//! what the gate compares. Spread rather than one block, because what a round learns is
//! the patient's own anatomy, which a held-out slice shares with its neighbours: a block in
//! the middle of the volume holds anatomy the round never trained on, and could not show
//! what it buys (docs/learning.md, "A round, step by step"). Knows nothing
//! of the database or the queue: callers observe progress and may cancel between steps.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;

use super::base::TrainingPair;
use super::base::checkpoint::LossPoint;
use super::error_estimate::HalfOutputs;
use super::fine_tune::{FineTuneData, fine_tune};
use super::hot_spots::hot_spot_regions;
pub use super::pair_source::N2nPair;
pub use super::round_control::{Flow, RoundError, RoundObserver};
pub use super::round_settings::{AnchorReference, InvalidRoundSettings, RoundKind, RoundSettings};
use crate::science::image::Image3;
use crate::science::model::backend::{TrainingDevice, TrainingWork, on_best_device};
use crate::science::model::burn_denoise::denoise_with_burn;
use crate::science::model::directory::StoredModel;
use crate::science::model::tgd_mask::NetworkMask;

/// What a round did, for the model version's report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoundReport {
    pub settings: RoundSettings,
    /// Each TGD pass's masks per layer (empty for a fine-tune of the last layers).
    pub passes: Vec<NetworkMask>,
    /// Share of all parameters any pass could change.
    pub fraction_retrained: f64,
    pub losses: Vec<LossPoint>,
    /// Held-out slices (z indices, ascending).
    pub held_out: Vec<usize>,
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
    /// The parent's and the new network's outputs for both halves, from validation: the gate
    /// compares them on the held-out slices without running either network again.
    pub parent_outputs: HalfOutputs,
    pub outputs: HalfOutputs,
}

/// The held-out slices: one in every `round(1 / fraction)` (0.25: every fourth), starting
/// half a stride in, so about `fraction` of the slices spread evenly through the volume; at
/// least one, and never all.
///
/// ```
/// use petal::science::training::n2n_round::held_out_slices;
/// assert_eq!(held_out_slices(12, 0.25), vec![2, 6, 10]);
/// assert_eq!(held_out_slices(2, 0.5), vec![1]);
/// ```
pub fn held_out_slices(slices: usize, fraction: f64) -> Vec<usize> {
    let stride = ((1.0 / fraction).round() as usize).max(2);
    let held: Vec<usize> = (stride / 2..slices).step_by(stride).collect();
    if held.is_empty() { vec![slices / 2] } else { held }
}

/// The N2N loss of `model` on the held-out slices (mean of |f(A) − B|² and |f(B) − A|²),
/// and f(A) and f(B).
pub fn validation_loss(
    model: &StoredModel,
    pair: &N2nPair,
    held_out: &[usize],
) -> Result<(f64, HalfOutputs), RoundError> {
    let plane = pair.a.grid.pixels_per_slice();
    let denoise = |input: &Image3| denoise_with_burn(model, input).map_err(RoundError::Validation);
    let squared_error = |output: &Image3, target: &Image3| {
        let sum: f64 = held_out
            .iter()
            .flat_map(|z| z * plane..(z + 1) * plane)
            .map(|i| (f64::from(output.data[i]) - f64::from(target.data[i])).powi(2))
            .sum();
        sum / (held_out.len() * plane).max(1) as f64
    };
    let (output_a, output_b) = (denoise(&pair.a)?, denoise(&pair.b)?);
    let loss = (squared_error(&output_a, &pair.b) + squared_error(&output_b, &pair.a)) / 2.0;
    Ok((loss, HalfOutputs { a: output_a, b: output_b }))
}

/// Training pairs of each (input, target), with patches centred only on slices that are
/// not held out. A round passes both N2N directions; a truth-trained oracle passes each half
/// with the noiseless image. With a `hot_spot_share`, the hot spots of `pair` are where
/// that share of the patches is drawn.
pub fn outside_held_out(
    directions: &[(&Image3, &Image3)],
    held_out: &[usize],
    pair: &N2nPair,
    settings: &RoundSettings,
) -> Vec<TrainingPair> {
    let regions = (settings.hot_spot_share > 0.0).then(|| hot_spot_regions(pair));
    directions
        .iter()
        .map(|(input, target)| TrainingPair {
            name: "n2n".into(),
            inputs: vec![(1.0, (*input).clone())],
            target: (*target).clone(),
            regions: regions.clone(),
            train_slices: Some((0..input.grid.slices).filter(|z| !held_out.contains(z)).collect()),
        })
        .collect()
}

/// The anchor of a round with an `anchor_weight` (else `None`): patches of `series` (the
/// series that gets denoised) outside the held-out slices, with the reference the settings
/// name as their target.
pub fn anchor_pair(
    parent: &StoredModel,
    series: &Image3,
    held_out: &[usize],
    settings: &RoundSettings,
) -> Result<Option<TrainingPair>, RoundError> {
    if settings.anchor_weight <= 0.0 {
        return Ok(None);
    }
    let reference = match settings.anchor_reference {
        AnchorReference::Input => series.clone(),
        AnchorReference::Parent => denoise_with_burn(parent, series).map_err(RoundError::Validation)?,
    };
    Ok(Some(TrainingPair {
        name: "anchor".into(),
        inputs: vec![(1.0, series.clone())],
        target: reference,
        regions: None,
        train_slices: Some((0..series.grid.slices).filter(|z| !held_out.contains(z)).collect()),
    }))
}

/// Runs the round where [`TrainingDevice::choose`] says (CUDA when built with it and a
/// driver is present, else the CPU); returns the outcome and where it ran. `full_count` is
/// the patient's full-count series on the pair's grid, when the study holds one.
pub fn run_round_on_best_device(
    parent: &StoredModel,
    pair: &N2nPair,
    full_count: Option<&Image3>,
    settings: &RoundSettings,
    observer: &mut dyn RoundObserver,
) -> Result<(RoundOutcome, TrainingDevice), RoundError> {
    struct Work<'a> {
        parent: &'a StoredModel,
        pair: &'a N2nPair,
        full_count: Option<&'a Image3>,
        settings: &'a RoundSettings,
        observer: &'a mut dyn RoundObserver,
    }
    impl TrainingWork for Work<'_> {
        type Output = Result<RoundOutcome, RoundError>;

        fn run<B: AutodiffBackend>(self, _device: TrainingDevice) -> Self::Output {
            run_round::<B>(self.parent, self.pair, self.full_count, self.settings, self.observer)
        }
    }
    let (outcome, device) = on_best_device(Work { parent, pair, full_count, settings, observer });
    Ok((outcome?, device))
}

/// Runs the round on `B` (the CPU backend, or CUDA where built and present).
pub fn run_round<B: AutodiffBackend>(
    parent: &StoredModel,
    pair: &N2nPair,
    full_count: Option<&Image3>,
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
    let (validation_loss_parent, parent_outputs) = validation_loss(parent, pair, &held_out)?;
    observer.parent_validated(validation_loss_parent);

    let pairs = outside_held_out(&[(&pair.a, &pair.b), (&pair.b, &pair.a)], &held_out, pair, settings);
    let series = match full_count {
        Some(full) if full.grid == grid => full,
        _ => &pair.a,
    };
    let anchor = anchor_pair(parent, series, &held_out, settings)?;
    let tuned = fine_tune::<B>(parent, FineTuneData { pairs: &pairs, anchor: anchor.as_ref() }, settings, observer)?;
    let model = tuned.model;
    let (passes, fraction_retrained, losses) = (tuned.passes, tuned.fraction_retrained, tuned.losses);
    let (validation_loss, outputs) = validation_loss(&model, pair, &held_out)?;
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
    Ok(RoundOutcome { model, report, parent_outputs, outputs })
}
