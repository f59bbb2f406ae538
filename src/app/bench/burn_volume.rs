//! `petal bench burn-volume`: one whole volume through the network in burn (the training
//! framework), on the CPU or on CUDA, in 3-slice windows as inference runs them. It answers
//! how long a whole-body series takes where ONNX Runtime has no GPU build, and checks that
//! the device's output agrees with the CPU's on the first slices.

use std::time::Instant;

use anyhow::Context;
use burn::tensor::backend::Backend;

use crate::science::model::burn_denoise::denoise_volume;
use crate::science::model::config::DnCnnConfig;
use crate::science::model::directory::StoredModel;
use crate::science::model::pseudo_random::{SplitMix, pseudo_random_model};
use crate::science::window::Volume;

#[derive(Debug, Clone, clap::Args)]
pub struct BurnVolumeBenchArgs {
    /// Where the network runs.
    #[arg(long, value_enum, default_value_t = crate::app::bench::round::BenchDevice::Cpu)]
    pub device: crate::app::bench::round::BenchDevice,
    /// Rows and columns of each slice.
    #[arg(long, default_value_t = 192)]
    pub size: usize,
    /// Slices of the volume.
    #[arg(long, default_value_t = 64)]
    pub slices: usize,
    /// Width multiplier of the pseudo-random model (1.0 is the paper's).
    #[arg(long, default_value_t = 1.0)]
    pub width_multiplier: f64,
    /// Model directory; without it, pseudo-random weights at `--width-multiplier`.
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// Windows per network call.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Slices compared with the same windows run on the CPU (0: no comparison).
    #[arg(long, default_value_t = 4)]
    pub compare_slices: usize,
}

/// A deterministic volume with PET-like values (SUV 0–6, smooth plus noise); the time a
/// convolution takes does not depend on what it convolves.
fn test_volume(size: usize, slices: usize) -> anyhow::Result<Volume> {
    let mut rng = SplitMix::new(7);
    let centre = size as f32 / 2.0;
    let data = (0..slices * size * size)
        .map(|i| {
            let (y, x) = (((i / size) % size) as f32, (i % size) as f32);
            let radius = ((y - centre).powi(2) + (x - centre).powi(2)).sqrt() / centre;
            let body = if radius < 0.8 { 1.5 + 4.0 * (1.0 - radius).powi(4) } else { 0.05 };
            body * (1.0 + 0.2 * rng.normal())
        })
        .collect();
    Ok(Volume::new(slices, size, size, data)?)
}

/// Runs `model` over `volume` on `B`; returns the output and the seconds it took.
fn denoise_on<B: Backend>(
    model: &StoredModel,
    volume: &Volume,
    batch: usize,
    device: &B::Device,
) -> anyhow::Result<(Volume, f64)> {
    let started = Instant::now();
    let output = denoise_volume::<B>(model, volume, batch, device)?;
    Ok((output, started.elapsed().as_secs_f64()))
}

/// The first `slices` slices of `volume`.
fn head(volume: &Volume, slices: usize) -> anyhow::Result<Volume> {
    let plane = volume.height() * volume.width();
    let slices = slices.min(volume.depth());
    Ok(Volume::new(slices, volume.height(), volume.width(), volume.data()[..slices * plane].to_vec())?)
}

pub fn run(args: &BurnVolumeBenchArgs) -> anyhow::Result<()> {
    let model = match &args.model {
        Some(dir) => StoredModel::load(dir).with_context(|| format!("loading {}", dir.display()))?,
        None => pseudo_random_model(DnCnnConfig::scaled(args.width_multiplier), 11)?,
    };
    let volume = test_volume(args.size, args.slices)?;
    let flops_per_pixel = model.config.flops_per_pixel();
    let (output, seconds) = match args.device {
        crate::app::bench::round::BenchDevice::Cpu => {
            denoise_on::<crate::science::model::backend::CpuBackend>(&model, &volume, args.batch, &Default::default())?
        }
        #[cfg(feature = "cuda")]
        crate::app::bench::round::BenchDevice::Cuda => {
            anyhow::ensure!(
                crate::science::model::backend::gpu_driver_present(),
                "no NVIDIA driver (libcuda.so.1) on this machine"
            );
            let device = Default::default();
            // A first call compiles the device's kernels; time the volume after it.
            denoise_on::<crate::science::model::backend::CudaBackend>(&model, &head(&volume, 3)?, args.batch, &device)?;
            denoise_on::<crate::science::model::backend::CudaBackend>(&model, &volume, args.batch, &device)?
        }
        #[cfg(not(feature = "cuda"))]
        crate::app::bench::round::BenchDevice::Cuda => {
            anyhow::bail!("this binary was built without the `cuda` feature")
        }
    };
    let pixels = (args.size * args.size * args.slices) as f64;
    let network = match &args.model {
        Some(dir) => format!("model {}", dir.display()),
        None => format!("width {}", args.width_multiplier),
    };
    crate::report!(
        "burn {:?}: {}×{}×{} volume, {network} ({:.2} MFLOP/pixel): {:.2} s, {:.1} slices/s, {:.1} GFLOP/s",
        args.device,
        args.size,
        args.size,
        args.slices,
        flops_per_pixel / 1e6,
        seconds,
        args.slices as f64 / seconds,
        flops_per_pixel * pixels / seconds / 1e9
    );
    if args.compare_slices > 0 {
        let part = head(&volume, args.compare_slices)?;
        let (reference, _) =
            denoise_on::<crate::science::model::backend::CpuBackend>(&model, &part, args.batch, &Default::default())?;
        // The head's last slice sees a replicated edge where the whole volume sees its
        // neighbour, so it is left out of the comparison.
        let kept = (reference.depth().saturating_sub(1)).max(1) * reference.height() * reference.width();
        let (expected, found) = (&reference.data()[..kept], &output.data()[..kept]);
        let largest = expected.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
        let worst = found.iter().zip(expected).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        crate::report!(
            "agreement with the CPU on the first {} slices: largest difference {:.3e} ({:.2e} of the largest value)",
            kept / (reference.height() * reference.width()),
            worst,
            worst / largest
        );
    }
    Ok(())
}
