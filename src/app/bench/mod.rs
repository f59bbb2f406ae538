//! `petal bench`: commands that print performance figures (never timed tests).
//! Each prints the command line and the machine with its figures, ready for
//! docs/benchmarks.md.

pub mod burn_volume;
pub mod denoise;
pub mod inference;
pub mod memory;
pub mod round;
pub mod servers;
pub mod stow;
pub mod train_step;
pub mod transcript;

/// One line describing this machine, for the record.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores, {cpu}")
}

/// How a bench runs ONNX Runtime, and the Python it compares with (shared by `bench
/// inference` and `bench denoise`).
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// ONNX Runtime intra-op threads (and GEMM threads); 0 means one per CPU core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Slice windows per network call.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// The ONNX Runtime shared library petal loads.
    #[arg(long, env = "ORT_DYLIB_PATH", default_value = crate::inference::DEFAULT_ORT_DYLIB_PATH)]
    pub ort_dylib_path: std::path::PathBuf,
    /// Python with numpy and onnxruntime (scripts/setup makes it), for the comparisons and
    /// the machine's GEMM rate.
    #[arg(long, default_value = ".venv/bin/python")]
    pub python: std::path::PathBuf,
}

impl EngineArgs {
    /// The intra-op threads to use: as given, or one per core.
    pub fn threads(&self) -> usize {
        match self.threads {
            0 => crate::inference::available_cores(),
            n => n,
        }
    }
}

/// Starts an inference engine for a bench: ONNX Runtime from `ort_dylib_path`, `threads`
/// intra-op threads, `batch` windows per call, one cached session.
pub(crate) async fn start_engine(
    ort_dylib_path: &std::path::Path,
    threads: usize,
    batch: usize,
) -> anyhow::Result<crate::inference::InferenceEngine> {
    use anyhow::Context;
    let settings = crate::inference::InferenceSettings {
        ort_dylib_path: ort_dylib_path.to_owned(),
        intra_threads: threads,
        batch_windows: batch,
        session_cache: 1,
        ..crate::inference::InferenceSettings::default()
    };
    tokio::task::spawn_blocking(move || crate::inference::InferenceEngine::start_onnx(&settings))
        .await
        .context("starting the inference engine")?
        .context("starting the inference engine")
}
