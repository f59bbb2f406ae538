//! What the inference thread drives: a synchronous [`Denoiser`] that maps a batch of slice
//! windows to the denoised windows, and its ONNX Runtime implementation, [`OrtDenoiser`],
//! which builds one session per model from the folded ONNX graph
//! ([`crate::science::model::onnx::export_folded`]) and keeps the most recently used few.

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;

use super::cache::LruCache;
use super::error::InferenceError;
use super::runtime::{self, OrtRuntime};
use super::{ExecutionProvider, InferenceSettings};
use crate::science::model::directory::StoredModel;
use crate::science::model::onnx::{INPUT_NAME, OUTPUT_NAME, export_folded};
use crate::science::window::{WindowBatch, WindowError};

/// Runs the network of a model on batches of windows. Used from one thread only.
pub trait Denoiser {
    /// Gets ready to run `model` (e.g. builds its session) and says where it runs.
    fn prepare(&mut self, model: &StoredModel) -> Result<ExecutionProvider, InferenceError>;

    /// The network's output for `batch` ([windows, slices, height, width]), same shape.
    fn run(&mut self, model: &StoredModel, batch: WindowBatch) -> Result<WindowBatch, InferenceError>;
}

struct CachedSession {
    session: Session,
    provider: ExecutionProvider,
}

/// [`Denoiser`] over ONNX Runtime: sessions cached per model sha256, least recently used
/// dropped first.
pub struct OrtDenoiser {
    runtime: OrtRuntime,
    intra_threads: usize,
    sessions: LruCache<CachedSession>,
}

impl std::fmt::Debug for OrtDenoiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtDenoiser")
            .field("runtime", &self.runtime)
            .field("intra_threads", &self.intra_threads)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl OrtDenoiser {
    /// Loads the ONNX Runtime library named in `settings`.
    pub fn new(settings: &InferenceSettings) -> Result<Self, InferenceError> {
        let runtime = runtime::load(&settings.ort_dylib_path)?;
        Ok(Self {
            runtime,
            intra_threads: settings.intra_threads.max(1),
            sessions: LruCache::new(settings.session_cache),
        })
    }

    pub fn runtime(&self) -> &OrtRuntime {
        &self.runtime
    }

    fn session(&mut self, model: &StoredModel) -> Result<&mut CachedSession, InferenceError> {
        if !self.sessions.contains(&model.sha256) {
            let started = std::time::Instant::now();
            let graph = export_folded(&model.config, &model.weights)
                .map_err(|err| InferenceError::Export { model: short(&model.sha256), reason: err.to_string() })?;
            let (session, provider) = self.build_session(&graph)?;
            tracing::info!(
                model = %short(&model.sha256),
                provider = provider.as_str(),
                intra_threads = self.intra_threads,
                took_ms = started.elapsed().as_millis() as u64,
                "built an ONNX Runtime session"
            );
            if let Some(evicted) = self.sessions.insert(model.sha256.clone(), CachedSession { session, provider }) {
                tracing::debug!(model = %short(&evicted), "dropped the least recently used ONNX Runtime session");
            }
        }
        self.sessions.get_mut(&model.sha256).ok_or_else(|| InferenceError::Runtime("session cache".to_owned()))
    }

    /// A CPU session, or with the `cuda` feature and an NVIDIA driver present a CUDA one
    /// (falling back to the CPU, with a warning, when the CUDA provider cannot be used).
    fn build_session(&self, graph: &[u8]) -> Result<(Session, ExecutionProvider), InferenceError> {
        #[cfg(feature = "cuda")]
        {
            if crate::science::model::backend::gpu_driver_present() {
                match self.cuda_session(graph) {
                    Ok(session) => return Ok((session, ExecutionProvider::Cuda)),
                    Err(err) => tracing::warn!(
                        error = %err,
                        "NVIDIA driver found but ONNX Runtime's CUDA provider cannot be used (a CPU-only \
                         libonnxruntime, or CUDA libraries missing); running inference on the CPU"
                    ),
                }
            } else {
                tracing::warn!("built with CUDA but no NVIDIA driver found; running inference on the CPU");
            }
        }
        let session = self.builder()?.commit_from_memory(graph).map_err(InferenceError::runtime)?;
        Ok((session, ExecutionProvider::Cpu))
    }

    #[cfg(feature = "cuda")]
    fn cuda_session(&self, graph: &[u8]) -> Result<Session, InferenceError> {
        self.builder()?
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(InferenceError::runtime)?
            .commit_from_memory(graph)
            .map_err(InferenceError::runtime)
    }

    fn builder(&self) -> Result<ort::session::builder::SessionBuilder, InferenceError> {
        Session::builder(&self.runtime.environment)
            .map_err(InferenceError::runtime)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(InferenceError::runtime)?
            .with_intra_threads(self.intra_threads)
            .map_err(InferenceError::runtime)
    }
}

impl Denoiser for OrtDenoiser {
    fn prepare(&mut self, model: &StoredModel) -> Result<ExecutionProvider, InferenceError> {
        Ok(self.session(model)?.provider)
    }

    fn run(&mut self, model: &StoredModel, batch: WindowBatch) -> Result<WindowBatch, InferenceError> {
        let expected = batch.shape();
        if expected[1] != model.config.input_slices {
            return Err(InferenceError::WrongSlices {
                model: short(&model.sha256),
                expected: model.config.input_slices,
                found: expected[1],
            });
        }
        let cached = self.session(model)?;
        let input = Tensor::from_array((expected, batch.into_data())).map_err(InferenceError::runtime)?;
        let outputs = cached.session.run(ort::inputs![INPUT_NAME => input]).map_err(InferenceError::runtime)?;
        let output = outputs
            .get(OUTPUT_NAME)
            .ok_or_else(|| InferenceError::Runtime(format!("the graph has no output named {OUTPUT_NAME}")))?;
        let (shape, values) = output.try_extract_tensor::<f32>().map_err(InferenceError::runtime)?;
        let found: Vec<usize> = shape.iter().map(|d| usize::try_from(*d).unwrap_or(0)).collect();
        if found != expected {
            return Err(WindowError::OutputShape { expected: expected.to_vec(), found }.into());
        }
        let [windows, slices, height, width] = expected;
        Ok(WindowBatch::new(windows, slices, height, width, values.to_vec())?)
    }
}

/// The first 12 hex digits of a sha256, for logs and messages.
pub fn short(sha256: &str) -> String {
    sha256.chars().take(12).collect()
}
