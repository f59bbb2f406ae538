//! `petal bench train-step` (alias `bench train`): seconds per TGD training step (forward,
//! backward, masked gradients, Adam) of the network on a batch of patches, next to a plain
//! fine-tune step of every parameter on the same batch (their ratio; the two kinds of step
//! alternate), on each burn backend this binary was built with. The figures chose petal's CPU backend (docs/benchmarks.md).

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};

use crate::science::model::config::DnCnnConfig;
use crate::science::model::network::DnCnn;
use crate::science::training::tgd_passes::kse_mask;
use crate::science::training::trainer::{OptimizerSettings, Trainer};
use crate::science::training::update_plan::{UpdatePlan, UpdateRule};

#[derive(Debug, Clone, clap::Args)]
pub struct TrainStepBenchArgs {
    /// Width multiplier of the network (1.0 is the paper's).
    #[arg(long, default_value_t = 1.0)]
    pub width_multiplier: f64,
    /// Patches per step.
    #[arg(long, default_value_t = crate::science::training::DEFAULT_BATCH)]
    pub batch: usize,
    /// Side of the square patches.
    #[arg(long, default_value_t = crate::science::training::DEFAULT_PATCH)]
    pub patch: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// KSE threshold of the TGD plan.
    #[arg(long, default_value_t = 0.3)]
    pub phi: f64,
}

pub fn run(args: &TrainStepBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.steps > 0 && args.batch > 0 && args.patch >= 8,
        "steps, batch and patch (>= 8) must be positive"
    );
    crate::report!(
        "petal bench train-step --width-multiplier {} --batch {} --patch {} --steps {} --phi {}",
        args.width_multiplier,
        args.batch,
        args.patch,
        args.steps,
        args.phi
    );
    crate::report!("machine: {}; rayon threads: {}", super::machine(), rayon_threads());
    crate::report!(
        "| backend | TGD s/step (median) | min | max | TGD steps/s | patches/s | plain fine-tune s/step | TGD / plain |"
    );
    crate::report!("|---|---|---|---|---|---|---|---|");
    let flex = if cfg!(feature = "fast-cpu") { "flex (simd, rayon)" } else { "flex (no simd or rayon feature)" };
    measure::<crate::science::model::backend::CpuTrainingBackend>(flex, args)?;
    #[cfg(feature = "bench-ndarray")]
    {
        let name = if cfg!(feature = "bench-ndarray-openblas") { "ndarray (OpenBLAS)" } else { "ndarray" };
        measure::<burn::backend::Autodiff<burn::backend::NdArray>>(name, args)?;
    }
    #[cfg(feature = "cuda")]
    if crate::science::model::backend::gpu_driver_present() {
        measure::<crate::science::model::backend::CudaTrainingBackend>("cuda", args)?;
    }
    Ok(())
}

fn rayon_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".to_owned())
}

/// Median, min and max seconds per step.
struct StepTimes {
    median: f64,
    min: f64,
    max: f64,
}

impl StepTimes {
    fn of(mut seconds: Vec<f64>) -> Self {
        seconds.sort_by(f64::total_cmp);
        Self { median: seconds[seconds.len() / 2], min: seconds[0], max: seconds[seconds.len() - 1] }
    }
}

/// `steps` steps of each trainer on one batch after a warm-up step each, interleaved (TGD,
/// plain, TGD, …) so that both meet the same machine state: on a shared 2-core machine the
/// speed drifts by tens of percent within a minute.
fn time_interleaved<B: AutodiffBackend>(
    tgd: &mut Trainer<B>,
    plain: &mut Trainer<B>,
    input: &Tensor<B, 4>,
    target: &Tensor<B, 4>,
    steps: usize,
) -> (StepTimes, StepTimes) {
    let time = |trainer: &mut Trainer<B>| {
        let start = Instant::now();
        trainer.step(input.clone(), target.clone());
        start.elapsed().as_secs_f64()
    };
    time(tgd);
    time(plain);
    let (mut tgd_seconds, mut plain_seconds) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    for _ in 0..steps {
        tgd_seconds.push(time(tgd));
        plain_seconds.push(time(plain));
    }
    (StepTimes::of(tgd_seconds), StepTimes::of(plain_seconds))
}

fn measure<B: AutodiffBackend>(name: &str, args: &TrainStepBenchArgs) -> anyhow::Result<()> {
    let device = B::Device::default();
    let config = DnCnnConfig::scaled(args.width_multiplier);
    config.validate()?;
    let network = DnCnn::<B>::init(&config, &device);
    let shape = [args.batch, config.input_slices, args.patch, args.patch];
    let input = Tensor::<B, 4>::random(shape, Distribution::Uniform(0.0, 2.0), &device);
    let target = Tensor::<B, 4>::random(shape, Distribution::Uniform(0.0, 2.0), &device);
    // The same network and batch under a TGD plan and under a plain fine-tune of everything.
    let plan = UpdatePlan::from_mask(&kse_mask(&network, args.phi)?, UpdateRule::TgdLayer);
    let plain = UpdatePlan::everything(&network);
    let mut tgd = Trainer::new(network.clone(), plan, OptimizerSettings::default());
    let mut full = Trainer::new(network, plain, OptimizerSettings::default());
    let (tgd, plain) = time_interleaved(&mut tgd, &mut full, &input, &target, args.steps);
    crate::report!(
        "| {name} | {:.3} | {:.3} | {:.3} | {:.2} | {:.1} | {:.3} | {:.2} |",
        tgd.median,
        tgd.min,
        tgd.max,
        1.0 / tgd.median,
        args.batch as f64 / tgd.median,
        plain.median,
        tgd.median / plain.median
    );
    Ok(())
}
