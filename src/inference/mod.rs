//! Inference: the denoising network run through ONNX Runtime (DESIGN.md §1.1, §2.2), on a
//! thread of its own, for the worker's jobs.
//!
//! - [`window`]: whole volumes as 3-slice windows and back (pure, tested on its own).
//! - [`runtime`]: the ONNX Runtime library, loaded from `ORT_DYLIB_PATH`, and its environment.
//! - [`denoiser`]: the synchronous [`Denoiser`] trait and [`OrtDenoiser`], which runs the
//!   folded ONNX graph of a model with sessions cached per model sha256.
//! - [`engine`]: [`InferenceEngine`], the cloneable async handle to the inference thread.
//! - [`context`]: the engine and base model a job-running process starts with, and the
//!   `inference` check of `/readyz`.

mod cache;
pub mod context;
pub mod denoiser;
pub mod engine;
mod error;
pub mod runtime;
pub mod window;

use std::path::PathBuf;

pub use context::{InferenceContext, InferenceReadiness, InferenceStatus};
pub use denoiser::{Denoiser, OrtDenoiser};
pub use engine::InferenceEngine;
pub use error::InferenceError;
pub use runtime::DEFAULT_ORT_DYLIB_PATH;
pub use window::{Volume, WindowBatch};

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

/// How inference runs; from [`crate::config::InferenceArgs`].
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
