//! The inference engine: one dedicated OS thread that owns the [`Denoiser`] (ONNX Runtime
//! sessions are heavy, CPU-bound and not async), fed by a channel. [`InferenceEngine`] is
//! the cheap, cloneable handle async code awaits on; each request carries a oneshot reply
//! and the caller's `tracing` span, so the thread's logs land under the job that asked.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::denoiser::{Denoiser, OrtDenoiser, short};
use super::error::InferenceError;
use super::{ExecutionProvider, InferenceSettings};
use crate::science::model::directory::StoredModel;
use crate::science::window::{Volume, denoise_in_windows};

enum Task {
    Prepare { model: Arc<StoredModel>, reply: oneshot::Sender<Result<ExecutionProvider, InferenceError>> },
    Denoise { model: Arc<StoredModel>, volume: Volume, reply: oneshot::Sender<Result<Volume, InferenceError>> },
}

struct Request {
    task: Task,
    span: tracing::Span,
}

/// Handle to the inference thread; clones share the thread, which stops when the last
/// handle is dropped.
#[derive(Clone)]
pub struct InferenceEngine {
    sender: mpsc::Sender<Request>,
    description: Arc<str>,
}

impl std::fmt::Debug for InferenceEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceEngine").field("description", &self.description).finish()
    }
}

impl InferenceEngine {
    /// Starts the engine over ONNX Runtime as `settings` say. Blocks while the library
    /// loads (call it from `spawn_blocking` in async code); fails when it cannot be loaded.
    pub fn start_onnx(settings: &InferenceSettings) -> Result<Self, InferenceError> {
        let settings = settings.clone();
        let batch = settings.batch_windows;
        Self::start(batch, move || {
            let denoiser = OrtDenoiser::new(&settings)?;
            let runtime = denoiser.runtime();
            let description = format!(
                "ONNX Runtime {} ({}; intra-op threads: {}, windows per call: {})",
                runtime.version,
                runtime.path.display(),
                settings.intra_threads.max(1),
                batch.max(1)
            );
            Ok((denoiser, description))
        })
    }

    /// Starts a thread that builds its denoiser with `make` (on the thread itself, so the
    /// denoiser need not be `Send`) and then serves requests, `batch_windows` windows per
    /// call. Blocks until `make` has finished, and returns its error if it failed.
    pub fn start<D, F>(batch_windows: usize, make: F) -> Result<Self, InferenceError>
    where
        D: Denoiser + 'static,
        F: FnOnce() -> Result<(D, String), InferenceError> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel::<Request>();
        let (started_tx, started_rx) = mpsc::sync_channel::<Result<String, InferenceError>>(1);
        std::thread::Builder::new().name("petal-inference".to_owned()).spawn(move || {
            let denoiser = match guarded(make) {
                Ok((denoiser, description)) => {
                    let _ = started_tx.send(Ok(description));
                    denoiser
                }
                Err(err) => {
                    let _ = started_tx.send(Err(err));
                    return;
                }
            };
            serve(denoiser, &receiver, batch_windows.max(1));
        })?;
        let description = started_rx
            .recv()
            .map_err(|_| InferenceError::Panicked("the inference thread stopped while starting".to_owned()))??;
        tracing::info!(engine = %description, "inference engine started");
        Ok(Self { sender, description: description.into() })
    }

    /// What runs inference, for logs and `/readyz`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Makes `model` ready to run (builds and caches its session) and says where it runs.
    pub async fn prepare(&self, model: Arc<StoredModel>) -> Result<ExecutionProvider, InferenceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Task::Prepare { model, reply })?;
        answer.await.map_err(|_| InferenceError::Stopped)?
    }

    /// Denoises a [depth, height, width] volume with `model`: 3-slice windows along z
    /// (stride 1, edge slices replicated), several windows per call, the centre output slice
    /// kept. The result has the input's shape.
    pub async fn denoise_volume(&self, model: Arc<StoredModel>, volume: Volume) -> Result<Volume, InferenceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Task::Denoise { model, volume, reply })?;
        answer.await.map_err(|_| InferenceError::Stopped)?
    }

    fn send(&self, task: Task) -> Result<(), InferenceError> {
        self.sender.send(Request { task, span: tracing::Span::current() }).map_err(|_| InferenceError::Stopped)
    }
}

/// The thread's loop: one request at a time until every handle is gone.
fn serve<D: Denoiser>(mut denoiser: D, receiver: &mpsc::Receiver<Request>, batch: usize) {
    while let Ok(Request { task, span }) = receiver.recv() {
        let _entered = span.enter();
        match task {
            Task::Prepare { model, reply } => {
                let _ = reply.send(guarded(|| denoiser.prepare(&model)));
            }
            Task::Denoise { model, volume, reply } => {
                if reply.is_closed() {
                    continue; // the caller gave up waiting
                }
                let started = Instant::now();
                let result = guarded(|| denoise(&mut denoiser, &model, &volume, batch));
                match &result {
                    Ok(_) => tracing::debug!(
                        model = %short(&model.sha256),
                        shape = ?volume.shape(),
                        took_ms = started.elapsed().as_millis() as u64,
                        "denoised a volume"
                    ),
                    Err(err) => tracing::warn!(model = %short(&model.sha256), error = %err, "inference failed"),
                }
                let _ = reply.send(result);
            }
        }
    }
}

fn denoise<D: Denoiser>(
    denoiser: &mut D,
    model: &StoredModel,
    volume: &Volume,
    batch: usize,
) -> Result<Volume, InferenceError> {
    let slab_seconds = &crate::job_metrics::job_metrics().slab_seconds;
    let output = denoise_in_windows(volume, model.config.input_slices, batch, |windows| {
        let started = Instant::now();
        let result = denoiser.run(model, windows);
        slab_seconds.observe(started.elapsed().as_secs_f64());
        result
    })?;
    if output.data().iter().any(|v| !v.is_finite()) && volume.data().iter().all(|v| v.is_finite()) {
        return Err(InferenceError::NotFinite);
    }
    Ok(output)
}

/// Runs `work`, turning a panic into an error so one bad request does not stop the thread.
fn guarded<T>(work: impl FnOnce() -> Result<T, InferenceError>) -> Result<T, InferenceError> {
    std::panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(InferenceError::Panicked(message))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::model::config::DnCnnConfig;
    use crate::science::model::weights::{ModelWeights, Tensor32, expected_tensors};
    use crate::science::window::WindowBatch;

    /// Returns each window unchanged, so the engine returns the input volume.
    struct Identity {
        calls: usize,
    }

    impl Denoiser for Identity {
        fn prepare(&mut self, _model: &StoredModel) -> Result<ExecutionProvider, InferenceError> {
            Ok(ExecutionProvider::Cpu)
        }

        fn run(&mut self, _model: &StoredModel, batch: WindowBatch) -> Result<WindowBatch, InferenceError> {
            self.calls += 1;
            if batch.data().first() == Some(&-1.0) {
                panic!("asked to panic");
            }
            Ok(batch)
        }
    }

    fn tiny_model() -> Arc<StoredModel> {
        let config = DnCnnConfig::scaled(0.05);
        let mut weights = ModelWeights::default();
        for (name, shape) in expected_tensors(&config) {
            let len = shape.iter().product();
            weights.insert(name, Tensor32::new(shape, vec![1.0; len]));
        }
        Arc::new(StoredModel::new(config, weights).expect("model"))
    }

    #[tokio::test]
    async fn the_engine_runs_requests_on_its_thread_and_survives_panics() {
        let engine = InferenceEngine::start(2, || Ok((Identity { calls: 0 }, "identity".to_owned()))).expect("engine");
        assert_eq!(engine.description(), "identity");
        let model = tiny_model();
        assert_eq!(engine.prepare(model.clone()).await.expect("prepare"), ExecutionProvider::Cpu);
        let volume = Volume::new(3, 2, 2, (0..12).map(|v| v as f32).collect()).expect("volume");
        let output = engine.clone().denoise_volume(model.clone(), volume.clone()).await.expect("denoised");
        assert_eq!(output, volume);

        let poison = Volume::new(1, 1, 1, vec![-1.0]).expect("volume");
        let err = engine.denoise_volume(model.clone(), poison).await.expect_err("panics");
        assert!(matches!(err, InferenceError::Panicked(ref m) if m.contains("asked to panic")), "{err}");
        assert!(engine.denoise_volume(model, volume).await.is_ok(), "the thread keeps serving");
    }

    #[test]
    fn a_failing_start_returns_its_error() {
        let err = InferenceEngine::start(1, || -> Result<(Identity, String), InferenceError> {
            Err(InferenceError::LibraryMissing { path: "/missing".into() })
        })
        .expect_err("fails");
        assert!(matches!(err, InferenceError::LibraryMissing { .. }));
    }
}
