//! `petal bench round`: one short N2N + TGD round on a simulated v2 patient, on the CPU or
//! on CUDA, with seconds per step and the losses, as one JSON line a script can compare
//! across devices (scripts/gpu-check runs it on both).

use std::time::Instant;

use anyhow::Context;

use crate::science::model::directory::StoredModel;
use crate::science::simulation::acquisition::ScannerModel;
use crate::science::simulation::osem::reconstruct;
use crate::science::simulation::{Grid, ReconVersion, Scan};
use crate::science::training::base::patches::PatchSampler;
use crate::science::training::fine_tune::{mean_batch_loss, round_sampling};
use crate::science::training::n2n_round::{Flow, N2nPair, RoundSettings, outside_held_out, run_round};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchDevice {
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RoundBenchArgs {
    /// Parent model directory (the base model by default).
    #[arg(long, env = "PETAL_BASE_MODEL", default_value = "models/base")]
    pub model: std::path::PathBuf,
    /// Where the round runs.
    #[arg(long, value_enum, default_value_t = BenchDevice::Cpu)]
    pub device: BenchDevice,
    /// Pixels across each simulated slice.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Slices of the simulated patient.
    #[arg(long, default_value_t = 16)]
    pub slices: usize,
    /// Seed of the simulated patient.
    #[arg(long, default_value_t = 31)]
    pub patient_seed: u64,
    /// Round settings to change from the defaults, as JSON (the API's RoundSettings), e.g.
    /// '{"steps_per_pass": 100, "phi": 0.4}'.
    #[arg(long, default_value = "{}")]
    pub settings: String,
}

pub fn run(args: &RoundBenchArgs) -> anyhow::Result<()> {
    let parent = StoredModel::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let settings: RoundSettings =
        serde_json::from_str(&args.settings).context("--settings: a RoundSettings JSON object")?;
    let scan = Scan::acquire(args.patient_seed, Grid::new(args.size, args.slices), ScannerModel::default(), 120.0);
    let (a, b) = scan.n2n_halves();
    let recon = ReconVersion::V2.settings();
    let pair =
        N2nPair { a: reconstruct(&scan.system, &a, &recon, &|| {}), b: reconstruct(&scan.system, &b, &recon, &|| {}) };
    let mut step_seconds = Vec::new();
    let mut last = Instant::now();
    let mut observer = |_step: usize, _total: usize, _loss: f64| {
        step_seconds.push(last.elapsed().as_secs_f64());
        last = Instant::now();
        Flow::Continue
    };
    let started = Instant::now();
    let outcome = match args.device {
        BenchDevice::Cpu => run_round::<crate::science::model::backend::CpuTrainingBackend>(
            &parent,
            &pair,
            None,
            &settings,
            &mut observer,
        )?,
        #[cfg(feature = "cuda")]
        BenchDevice::Cuda => {
            anyhow::ensure!(
                crate::science::model::backend::gpu_driver_present(),
                "no NVIDIA driver (libcuda.so.1) on this machine"
            );
            run_round::<crate::science::model::backend::CudaTrainingBackend>(
                &parent,
                &pair,
                None,
                &settings,
                &mut observer,
            )?
        }
        #[cfg(not(feature = "cuda"))]
        BenchDevice::Cuda => anyhow::bail!("this binary was built without the `cuda` feature"),
    };
    let total = started.elapsed().as_secs_f64();
    step_seconds.sort_by(f64::total_cmp);
    let median = step_seconds.get(step_seconds.len() / 2).copied().unwrap_or(f64::NAN);
    let report = &outcome.report;
    // The round's first and last tenth of batches, each scored by the parent and by the new
    // network: whether the round lowered its own objective, whatever the batches' difficulty.
    let pairs = outside_held_out(&[(&pair.a, &pair.b), (&pair.b, &pair.a)], &report.held_out, &pair, &settings);
    let sampler = PatchSampler::new(&pairs, round_sampling(&parent, &settings));
    let steps = report.losses.len();
    let tenth = (steps / 10).max(1).min(steps);
    let step_loss = |points: &[crate::science::training::base::checkpoint::LossPoint]| {
        points.iter().map(|p| p.loss).sum::<f64>() / points.len().max(1) as f64
    };
    let mut batch_losses = serde_json::Map::new();
    for (name, range) in [("first_tenth", 0..tenth), ("last_tenth", steps - tenth..steps)] {
        batch_losses.insert(
            name.into(),
            serde_json::json!({
                "while_stepping": step_loss(&report.losses[range.clone()]),
                "parent": mean_batch_loss(&parent, &sampler, &settings, range.clone())?,
                "after": mean_batch_loss(&outcome.model, &sampler, &settings, range)?,
            }),
        );
    }
    let line = serde_json::json!({
        "device": format!("{:?}", args.device).to_lowercase(),
        "steps": report.losses.len(),
        "median_step_seconds": median,
        "round_seconds": total,
        "first_loss": report.losses.first().map(|p| p.loss),
        "last_loss": report.losses.last().map(|p| p.loss),
        "validation_loss_parent": report.validation_loss_parent,
        "validation_loss": report.validation_loss,
        "validation_gain_percent": (1.0 - report.validation_loss / report.validation_loss_parent) * 100.0,
        "settings": settings,
        "fraction_retrained": report.fraction_retrained,
        "batch_losses": batch_losses,
    });
    crate::report!("{line}");
    Ok(())
}
