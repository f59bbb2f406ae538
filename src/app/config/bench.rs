//! The flags of `petal bench`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Also append the figures, with the command line, date and machine, to this Markdown
    /// file (e.g. docs/benchmarks.md).
    #[arg(long, global = true)]
    pub record: Option<PathBuf>,
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// STOW-RS ingest: instances/s and MB/s for a synthetic PET series.
    Stow(crate::app::bench::stow::StowBenchArgs),
    /// One TGD training step (forward, backward, Adam) next to a plain fine-tune step, on each burn backend built in.
    #[command(alias = "train")]
    TrainStep(crate::app::bench::train_step::TrainStepBenchArgs),
    /// Whole-volume inference: petal's engine vs Python onnxruntime, against the machine's GEMM rate.
    Inference(crate::app::bench::inference::InferenceBenchArgs),
    /// The denoise pipeline on a simulated series, next to the raw inference engine (its overhead).
    Denoise(crate::app::bench::denoise::DenoiseBenchArgs),
    /// A short N2N + TGD round on a simulated patient, on the CPU or CUDA (one JSON line).
    Round(crate::app::bench::round::RoundBenchArgs),
    /// A whole volume through the network in burn, on the CPU or CUDA, checked against the CPU.
    BurnVolume(crate::app::bench::burn_volume::BurnVolumeBenchArgs),
}
