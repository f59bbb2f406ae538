//! Inference: the denoising network run through ONNX Runtime (docs/science.md §1, docs/interoperability.md §6), on a
//! thread of its own, for the worker's jobs.
//!
//! - Whole volumes as 3-slice windows and back: [`crate::science::window`] (pure, shared
//!   with training).
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
mod settings;

pub use crate::science::window::{Volume, WindowBatch};
pub use context::{InferenceContext, InferenceReadiness, InferenceStatus};
pub use denoiser::{Denoiser, OrtDenoiser};
pub use engine::InferenceEngine;
pub use error::InferenceError;
pub use runtime::DEFAULT_ORT_DYLIB_PATH;
pub use settings::{DEFAULT_BASE_MODEL, ExecutionProvider, InferenceSettings, available_cores};
