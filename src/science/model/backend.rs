//! Which burn backend runs the network: the CPU backend (`flex`, measured fastest here, see
//! docs/benchmarks.md) always, burn-cuda when petal is built with the `cuda` feature and a
//! GPU driver is present. burn 0.21's CUDA backend panics without a driver, so the driver is
//! looked for first.

/// The CPU backend.
pub type CpuBackend = burn::backend::Flex;
/// The CPU backend with automatic differentiation, for training.
pub type CpuTrainingBackend = burn::backend::Autodiff<CpuBackend>;

/// The CUDA backend (only with the `cuda` feature).
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda;
/// The CUDA backend with automatic differentiation.
#[cfg(feature = "cuda")]
pub type CudaTrainingBackend = burn::backend::Autodiff<CudaBackend>;

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingDevice {
    Cpu,
    Cuda,
}

impl TrainingDevice {
    /// CUDA when built with the `cuda` feature and a driver is present; otherwise the CPU,
    /// saying why in the log.
    pub fn choose() -> Self {
        if !cfg!(feature = "cuda") {
            return Self::Cpu;
        }
        if gpu_driver_present() {
            tracing::info!("training on CUDA (driver found)");
            Self::Cuda
        } else {
            tracing::warn!("built with CUDA but no NVIDIA driver found (libcuda.so.1); training on the CPU");
            Self::Cpu
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        }
    }
}

/// Training work that runs on any autodiff backend; [`on_best_device`] picks the backend.
/// (A trait because a closure cannot be generic over the backend.)
pub trait TrainingWork {
    type Output;

    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: TrainingDevice) -> Self::Output;
}

/// Runs `work` where [`TrainingDevice::choose`] says: CUDA when built with it and a driver is
/// present, else the CPU. Returns the output and where it ran.
pub fn on_best_device<W: TrainingWork>(work: W) -> (W::Output, TrainingDevice) {
    match TrainingDevice::choose() {
        #[cfg(feature = "cuda")]
        TrainingDevice::Cuda => (work.run::<CudaTrainingBackend>(TrainingDevice::Cuda), TrainingDevice::Cuda),
        _ => (work.run::<CpuTrainingBackend>(TrainingDevice::Cpu), TrainingDevice::Cpu),
    }
}

/// Whether an NVIDIA driver is installed: its kernel module's proc entry or its user-space
/// library in one of the usual places.
pub fn gpu_driver_present() -> bool {
    if std::path::Path::new("/proc/driver/nvidia/version").exists() {
        return true;
    }
    let mut dirs: Vec<String> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    dirs.extend(
        ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64", "/usr/lib/wsl/lib"].map(str::to_owned),
    );
    dirs.iter().any(|d| std::path::Path::new(d).join("libcuda.so.1").exists())
}
