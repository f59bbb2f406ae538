//! How inference runs: the library, the base model, threads, batching and cached sessions,
//! and where a session runs.

use std::path::PathBuf;

use super::runtime::DEFAULT_ORT_DYLIB_PATH;

/// Where the base model is looked for unless `PETAL_BASE_MODEL` says otherwise.
pub const DEFAULT_BASE_MODEL: &str = "models/base";

/// Where a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionProvider {
    Cpu,
    Cuda,
}

impl ExecutionProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "CPU",
            Self::Cuda => "CUDA",
        }
    }
}

/// How inference runs; from [`crate::app::config::InferenceArgs`].
#[derive(Debug, Clone)]
pub struct InferenceSettings {
    /// The ONNX Runtime shared library.
    pub ort_dylib_path: PathBuf,
    /// The base model's directory.
    pub base_model: PathBuf,
    /// ONNX Runtime intra-op threads per session.
    pub intra_threads: usize,
    /// Slice windows per session call.
    pub batch_windows: usize,
    /// Sessions kept (one per model), least recently used dropped first.
    pub session_cache: usize,
}

impl Default for InferenceSettings {
    fn default() -> Self {
        Self {
            ort_dylib_path: PathBuf::from(DEFAULT_ORT_DYLIB_PATH),
            base_model: PathBuf::from(DEFAULT_BASE_MODEL),
            intra_threads: available_cores(),
            batch_windows: 4,
            session_cache: 4,
        }
    }
}

/// CPU cores this process may use (at least 1).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}
