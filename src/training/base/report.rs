//! How good a trained base model is, on a held-out study: PSNR and SSIM of the input and of
//! the network's output against the target, and mean activity in the liver and lesions
//! (a denoiser must not shift them). Also renders the model directory's report.md.

use burn::tensor::{Tensor, TensorData};

use super::checkpoint::LossPoint;
use super::data::TrainingPair;
use crate::evaluation::image_metrics::{psnr, ssim};
use crate::inference::window::{Volume, WindowBatch, denoise_in_windows};
use crate::model::backend::CpuBackend;
use crate::model::directory::StoredModel;
use crate::model::network::DnCnn;
use crate::simulation::Image3;

/// Held-out figures at one count level.
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

/// The network's output for a whole volume (3-slice windows, edges replicated), on the CPU.
pub fn denoise_with_burn(model: &StoredModel, image: &Image3) -> anyhow::Result<Image3> {
    let device = Default::default();
    let network = DnCnn::<CpuBackend>::from_weights(&model.config, &model.weights, &device)?;
    let grid = image.grid;
    let volume = Volume::new(grid.slices, grid.size, grid.size, image.data.clone())?;
    let output = denoise_in_windows(&volume, model.config.input_slices, 4, |batch: WindowBatch| {
        let shape = batch.shape();
        let input = Tensor::<CpuBackend, 4>::from_data(TensorData::new(batch.into_data(), shape), &device);
        let values = network.forward(input).into_data().to_vec::<f32>().map_err(|e| {
            crate::inference::InferenceError::InvalidShape(format!("the network output is not f32: {e:?}"))
        })?;
        WindowBatch::new(shape[0], shape[1], shape[2], shape[3], values)
    })?;
    Ok(Image3 { grid, data: output.into_data() })
}

/// Evaluates `model` on every input level of `pair`.
pub fn evaluate(model: &StoredModel, pair: &TrainingPair) -> anyhow::Result<Vec<HeldOutMetrics>> {
    let target = &pair.target;
    let peak = target.data.iter().fold(0.0f32, |m, v| m.max(*v)) as f64;
    let (size, everything) = (target.grid.size, vec![true; target.data.len()]);
    let regions = pair.regions.clone().unwrap_or_default();
    let liver = if regions.liver.is_empty() { everything.clone() } else { regions.liver };
    let lesions = if regions.lesions.is_empty() { everything } else { regions.lesions };
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

/// What the report says besides the metrics.
pub struct ReportContext<'a> {
    pub command: &'a str,
    pub data: &'a str,
    pub seconds: f64,
    pub device: &'a str,
    pub losses: &'a [LossPoint],
    pub held_out: &'a str,
}

/// report.md of the model directory.
pub fn report_markdown(model: &StoredModel, context: &ReportContext<'_>, metrics: &[HeldOutMetrics]) -> String {
    let config = &model.config;
    let tail = |n: usize| {
        let last: Vec<f64> = context.losses.iter().rev().take(n).map(|p| p.loss).collect();
        last.iter().sum::<f64>() / last.len().max(1) as f64
    };
    let first = context.losses.iter().take(50).map(|p| p.loss).sum::<f64>() / context.losses.len().clamp(1, 50) as f64;
    let mut text = format!(
        "# Base model report\n\n\
         Made by `petal train-base` (src/training/base/). Every figure below comes from that run.\n\n\
         ```\n{}\n```\n\n\
         - Network: 2.5D DnCNN, width multiplier {}, widths {:?}, {} parameters, {:.2} MFLOP per output pixel\n\
         - sha256 of model.safetensors: `{}`\n\
         - Training data: {}\n\
         - {} steps in {:.0} s on {} ({:.2} s/step)\n\
         - Loss (MSE, SUV²): first 50 steps {:.5}, last 50 steps {:.5}; curve in loss.png (log scale, grey raw, blue running mean of 50)\n\n\
         ## Held-out study ({})\n\n\
         Target: the reconstruction of noiseless data. Means are SUV.\n\n\
         | count level | PSNR in → out (dB) | SSIM in → out | liver mean target / in / out | liver std in → out | lesion mean target / in / out |\n\
         |---|---|---|---|---|---|\n",
        context.command,
        config.width_multiplier,
        config.widths(),
        config.parameter_count(),
        config.flops_per_pixel() / 1e6,
        model.sha256,
        context.data,
        context.losses.last().map_or(0, |p| p.step),
        context.seconds,
        context.device,
        context.seconds / context.losses.len().max(1) as f64,
        first,
        tail(50),
        context.held_out,
    );
    for m in metrics {
        text += &format!(
            "| {:.0} % | {:.2} → {:.2} | {:.4} → {:.4} | {:.3} / {:.3} / {:.3} | {:.3} → {:.3} | {:.3} / {:.3} / {:.3} |\n",
            m.count_level * 100.0,
            m.psnr_input,
            m.psnr_output,
            m.ssim_input,
            m.ssim_output,
            m.liver_mean[0],
            m.liver_mean[1],
            m.liver_mean[2],
            m.liver_std[0],
            m.liver_std[1],
            m.lesion_mean[0],
            m.lesion_mean[1],
            m.lesion_mean[2],
        );
    }
    text
}
