//! How good a trained base model is, on a held-out study: PSNR and SSIM of the input and of
//! the network's output against the target, and mean activity in the liver and lesions
//! (a denoiser must not shift them). Also renders the model directory's report.md.

use super::checkpoint::LossPoint;
use super::data::TrainingPair;
use crate::science::metrics::{psnr, ssim};
use crate::science::model::burn_denoise::denoise_with_burn;
use crate::science::model::directory::StoredModel;

/// Held-out figures of one input (one realization at one count level).
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldOutMetrics {
    pub count_level: f64,
    pub psnr_input: f64,
    pub psnr_output: f64,
    pub ssim_input: f64,
    pub ssim_output: f64,
    /// Mean in the liver (lesions excluded): target, input, output.
    pub liver_mean: [f64; 3],
    /// Standard deviation in the liver: input, output.
    pub liver_std: [f64; 2],
    /// Mean over lesion voxels: target, input, output.
    pub lesion_mean: [f64; 3],
}

impl HeldOutMetrics {
    /// How far the network moved the liver mean from its input (%).
    pub fn liver_change_percent(&self) -> f64 {
        change_percent(self.liver_mean[1], self.liver_mean[2])
    }

    /// How far the network moved the lesion mean from its input (%).
    pub fn lesion_change_percent(&self) -> f64 {
        change_percent(self.lesion_mean[1], self.lesion_mean[2])
    }
}

fn change_percent(before: f64, after: f64) -> f64 {
    (after / before - 1.0) * 100.0
}

/// The realizations of one count level together: means of their figures, and the range of
/// the mean changes. One realization of a small lesion is too noisy to judge a denoiser by
/// (its input mean alone scatters by several percent), so the report judges the average.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldOutLevel {
    pub realizations: usize,
    /// Means over the realizations, fields as in [`HeldOutMetrics`].
    pub mean: HeldOutMetrics,
    /// Mean change of the liver mean, output against input (%), and its smallest and largest.
    pub liver_change_percent: [f64; 3],
    /// The same for the lesion mean.
    pub lesion_change_percent: [f64; 3],
}

/// Groups per-input figures by count level (in the order the levels first appear).
pub fn by_level(metrics: &[HeldOutMetrics]) -> Vec<HeldOutLevel> {
    let mut levels: Vec<f64> = Vec::new();
    for m in metrics {
        if !levels.contains(&m.count_level) {
            levels.push(m.count_level);
        }
    }
    levels
        .into_iter()
        .map(|level| {
            let group: Vec<&HeldOutMetrics> = metrics.iter().filter(|m| m.count_level == level).collect();
            let n = group.len() as f64;
            let mean_of = |f: &dyn Fn(&HeldOutMetrics) -> f64| group.iter().map(|m| f(m)).sum::<f64>() / n;
            let spread = |f: &dyn Fn(&HeldOutMetrics) -> f64| {
                let values: Vec<f64> = group.iter().map(|m| f(m)).collect();
                let (low, high) =
                    values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
                [values.iter().sum::<f64>() / n, low, high]
            };
            let mean = HeldOutMetrics {
                count_level: level,
                psnr_input: mean_of(&|m| m.psnr_input),
                psnr_output: mean_of(&|m| m.psnr_output),
                ssim_input: mean_of(&|m| m.ssim_input),
                ssim_output: mean_of(&|m| m.ssim_output),
                liver_mean: [0, 1, 2].map(|i| mean_of(&|m| m.liver_mean[i])),
                liver_std: [0, 1].map(|i| mean_of(&|m| m.liver_std[i])),
                lesion_mean: [0, 1, 2].map(|i| mean_of(&|m| m.lesion_mean[i])),
            };
            HeldOutLevel {
                realizations: group.len(),
                mean,
                liver_change_percent: spread(&|m| m.liver_change_percent()),
                lesion_change_percent: spread(&|m| m.lesion_change_percent()),
            }
        })
        .collect()
}

/// Evaluates `model` on every input of `pair` (each realization of each count level).
pub fn evaluate(model: &StoredModel, pair: &TrainingPair) -> anyhow::Result<Vec<HeldOutMetrics>> {
    let target = &pair.target;
    let peak = target.data.iter().fold(0.0f32, |m, v| m.max(*v)) as f64;
    let (size, everything) = (target.grid.size, vec![true; target.data.len()]);
    let regions = pair.regions.clone().unwrap_or_default();
    let lesions = if regions.lesions.is_empty() { everything.clone() } else { regions.lesion_mask() };
    let liver = if regions.liver.is_empty() { everything } else { regions.liver };
    pair.inputs
        .iter()
        .map(|(level, input)| {
            let output = denoise_with_burn(model, input)?;
            Ok(HeldOutMetrics {
                count_level: *level,
                psnr_input: psnr(&input.data, &target.data, peak),
                psnr_output: psnr(&output.data, &target.data, peak),
                ssim_input: ssim(&input.data, &target.data, size, size, peak),
                ssim_output: ssim(&output.data, &target.data, size, size, peak),
                liver_mean: [target.masked_mean(&liver), input.masked_mean(&liver), output.masked_mean(&liver)],
                liver_std: [input.masked_std(&liver), output.masked_std(&liver)],
                lesion_mean: [target.masked_mean(&lesions), input.masked_mean(&lesions), output.masked_mean(&lesions)],
            })
        })
        .collect()
}

/// KSE's threshold whose kernels must be free to retrain at little cost (the rounds' φ).
pub const ROOM_PHI: f64 = 0.3;

/// What dropping the kernels KSE flags costs on the held-out study: the room TGD has. A
/// kernel the network barely uses can be retrained for a patient without losing what the
/// base model knows; one it relies on cannot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelRoom {
    pub phi: f64,
    /// Share of the parameters in the flagged kernels (%).
    pub flagged_percent: f64,
    /// Flagged kernels per layer, as `conv<i> flagged/all`.
    pub flagged_per_layer: Vec<String>,
    /// Per count level: PSNR (dB) and liver std of the output, whole and with the flagged
    /// kernels dropped.
    pub levels: Vec<RoomLevel>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RoomLevel {
    pub count_level: f64,
    pub psnr: [f64; 2],
    pub liver_std: [f64; 2],
}

impl RoomLevel {
    pub fn psnr_cost_db(&self) -> f64 {
        self.psnr[0] - self.psnr[1]
    }

    pub fn liver_std_rise_percent(&self) -> f64 {
        change_percent(self.liver_std[0], self.liver_std[1])
    }
}

/// Measures [`KernelRoom`] at `phi` from the held-out figures of the whole model.
pub fn kernel_room(
    model: &StoredModel,
    pair: &TrainingPair,
    whole: &[HeldOutLevel],
    phi: f64,
) -> anyhow::Result<KernelRoom> {
    use crate::science::evaluation::paper::kse_sweep::{drop_flagged, flagged};
    let mask = flagged(model, phi)?;
    let dropped = drop_flagged(model, &mask)?;
    let without = by_level(&evaluate(&dropped, pair)?);
    let levels = whole
        .iter()
        .zip(&without)
        .map(|(whole, without)| RoomLevel {
            count_level: whole.mean.count_level,
            psnr: [whole.mean.psnr_output, without.mean.psnr_output],
            liver_std: [whole.mean.liver_std[1], without.mean.liver_std[1]],
        })
        .collect();
    let flagged_per_layer = mask
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            format!("conv{} {}/{}", i + 1, layer.retrain.iter().filter(|r| **r).count(), layer.retrain.len())
        })
        .collect();
    Ok(KernelRoom { phi, flagged_percent: mask.fraction_retrained * 100.0, flagged_per_layer, levels })
}

/// The report's section on [`KernelRoom`].
pub fn kernel_room_markdown(room: &KernelRoom) -> String {
    let mut text = format!(
        "\n## Room for TGD (KSE at φ {})\n\n\
         KSE flags {:.1} % of the parameters ({}). Dropping them (filter, bias, BatchNorm γ and β \
         set to zero) costs, on the held-out study:\n\n\
         | count level | PSNR whole → dropped (dB) | cost (dB) | liver std whole → dropped | rise |\n\
         |---|---|---|---|---|\n",
        room.phi,
        room.flagged_percent,
        room.flagged_per_layer.join(", ")
    );
    for level in &room.levels {
        text += &format!(
            "| {:.0} % | {:.2} → {:.2} | {:.2} | {:.3} → {:.3} | {:+.1} % |\n",
            level.count_level * 100.0,
            level.psnr[0],
            level.psnr[1],
            level.psnr_cost_db(),
            level.liver_std[0],
            level.liver_std[1],
            level.liver_std_rise_percent()
        );
    }
    text
}

/// What the report says besides the metrics.
pub struct ReportContext<'a> {
    pub command: &'a str,
    pub data: &'a str,
    pub seconds: f64,
    pub device: &'a str,
    pub losses: &'a [LossPoint],
    pub held_out: &'a str,
    /// Batches the BatchNorm running statistics were averaged over (0: training's own).
    pub batch_norm_batches: usize,
    /// Weight of the squared error at lesion voxels (1: plain MSE).
    pub lesion_weight: f64,
    /// The model training started from, and its directory (none: fresh weights).
    pub started_from: Option<(&'a StoredModel, &'a std::path::Path)>,
}

fn batch_norm_source(batches: usize) -> String {
    match batches {
        0 => "training's exponential average (momentum as in config.json)".to_owned(),
        n => format!("the mean of {n} batches' statistics, drawn as in training, after the last step"),
    }
}

/// report.md of the model directory.
pub fn report_markdown(model: &StoredModel, context: &ReportContext<'_>, levels: &[HeldOutLevel]) -> String {
    let config = &model.config;
    let tail = |n: usize| {
        let last: Vec<f64> = context.losses.iter().rev().take(n).map(|p| p.loss).collect();
        last.iter().sum::<f64>() / last.len().max(1) as f64
    };
    let first = context.losses.iter().take(50).map(|p| p.loss).sum::<f64>() / context.losses.len().clamp(1, 50) as f64;
    let mut text = format!(
        "# Base model report\n\n\
         Made by `petal train-base` (src/science/training/base/). Every figure below comes from that run.\n\n\
         ```\n{}\n```\n\n\
         - Network: 2.5D DnCNN, width multiplier {}, widths {:?}, {} parameters, {:.2} MFLOP per output pixel\n\
         - sha256 of model.safetensors: `{}`\n\
         - Initial weights: {}\n\
         - Training data: {}\n\
         - {} steps in {:.0} s on {} ({:.2} s/step)\n\
         - Loss ({}, SUV²): first 50 steps {:.5}, last 50 steps {:.5}; curve in loss.png (log scale, grey raw, blue running mean of 50)\n\
         - BatchNorm running statistics: {}\n\n\
         ## Held-out study ({})\n\n\
         Target: the reconstruction of noiseless data. Means are SUV, averaged over the \
         independent realizations of each count level (disjoint parts of the counts). \
         \"out vs in\" is the change of a region's mean from the network's input to its output \
         on the same realization: the mean over realizations, and the range in brackets.\n\n\
         | count level | realizations | PSNR in → out (dB) | SSIM in → out | liver mean target / in / out | liver out vs in | liver std in → out | lesion mean target / in / out | lesion out vs in |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        context.command,
        config.width_multiplier,
        config.widths(),
        config.parameter_count(),
        config.flops_per_pixel() / 1e6,
        model.sha256,
        match context.started_from {
            Some((start, dir)) => format!("those of {} (sha256 `{}`)", dir.display(), start.sha256),
            None => "fresh (Kaiming-uniform kernels, seeded)".to_owned(),
        },
        context.data,
        context.losses.last().map_or(0, |p| p.step),
        context.seconds,
        context.device,
        context.seconds / context.losses.len().max(1) as f64,
        match context.lesion_weight {
            1.0 => "MSE".to_owned(),
            weight => format!("MSE with lesion voxels weighted ×{weight}"),
        },
        first,
        tail(50),
        batch_norm_source(context.batch_norm_batches),
        context.held_out,
    );
    let change = |c: [f64; 3]| format!("{:+.1} % [{:+.1}, {:+.1}]", c[0], c[1], c[2]);
    for level in levels {
        let m = &level.mean;
        text += &format!(
            "| {:.0} % | {} | {:.2} → {:.2} | {:.4} → {:.4} | {:.3} / {:.3} / {:.3} | {} | {:.3} → {:.3} | {:.3} / {:.3} / {:.3} | {} |\n",
            m.count_level * 100.0,
            level.realizations,
            m.psnr_input,
            m.psnr_output,
            m.ssim_input,
            m.ssim_output,
            m.liver_mean[0],
            m.liver_mean[1],
            m.liver_mean[2],
            change(level.liver_change_percent),
            m.liver_std[0],
            m.liver_std[1],
            m.lesion_mean[0],
            m.lesion_mean[1],
            m.lesion_mean[2],
            change(level.lesion_change_percent),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(count_level: f64, lesion_in: f64, lesion_out: f64) -> HeldOutMetrics {
        HeldOutMetrics {
            count_level,
            psnr_input: 30.0,
            psnr_output: 40.0,
            ssim_input: 0.9,
            ssim_output: 0.99,
            liver_mean: [2.0, 2.0, 2.0],
            liver_std: [0.5, 0.2],
            lesion_mean: [6.0, lesion_in, lesion_out],
        }
    }

    #[test]
    fn realizations_are_grouped_by_count_level_with_the_range_of_their_changes() {
        let metrics = [figures(0.1, 5.0, 4.5), figures(1.0, 5.0, 5.0), figures(0.1, 4.0, 4.2)];
        let levels = by_level(&metrics);
        assert_eq!(
            levels.iter().map(|l| (l.mean.count_level, l.realizations)).collect::<Vec<_>>(),
            [(0.1, 2), (1.0, 1)]
        );
        let low = &levels[0];
        assert!((low.mean.lesion_mean[1] - 4.5).abs() < 1e-12 && (low.mean.lesion_mean[2] - 4.35).abs() < 1e-12);
        // −10 % and +5 %: mean −2.5 %, range [−10, +5].
        let [mean, lowest, highest] = low.lesion_change_percent;
        assert!((mean + 2.5).abs() < 1e-9 && (lowest + 10.0).abs() < 1e-9 && (highest - 5.0).abs() < 1e-9);
        assert_eq!(levels[1].lesion_change_percent, [0.0, 0.0, 0.0]);
        assert_eq!(low.liver_change_percent, [0.0, 0.0, 0.0]);
    }
}
