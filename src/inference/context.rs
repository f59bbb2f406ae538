//! What a process that runs jobs has for inference: the engine and the base model, started
//! and loaded once at startup. Startup never fails on their account: a missing library or
//! model is logged and reported by [`InferenceContext::readiness`] (`/readyz` answers 503
//! with the reason and the fix), and the process keeps serving everything else.

use std::path::Path;
use std::sync::Arc;

use super::InferenceSettings;
use super::denoiser::short;
use super::engine::InferenceEngine;
use crate::domain::ModelVersionId;
use crate::science::model::directory::StoredModel;

/// How inference stands in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InferenceStatus {
    /// This process runs no jobs (`serve --no-worker`), so it needs no inference.
    NotNeeded,
    /// The engine runs and the base model is loaded; says on what.
    Ready(String),
    /// Something is missing; each entry says what and how to fix it.
    Unavailable(Vec<String>),
}

/// The engine (when it started), the base model (when it loaded), and the status of both.
#[derive(Debug, Clone)]
pub struct InferenceContext {
    pub engine: Option<InferenceEngine>,
    pub base_model: Option<Arc<StoredModel>>,
    /// The base model's id in the model registry, once registered (see
    /// [`Self::record_base_version`]); derived series and reports name it.
    pub base_version: Option<ModelVersionId>,
    pub status: InferenceStatus,
}

/// A readiness check: whether inference can run, and a sentence saying why or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferenceReadiness {
    pub ok: bool,
    pub detail: String,
}

impl InferenceContext {
    /// For processes that run no jobs.
    pub fn not_needed() -> Self {
        Self { engine: None, base_model: None, base_version: None, status: InferenceStatus::NotNeeded }
    }

    /// Starts the ONNX Runtime engine, loads the base model and builds its session. What
    /// fails is logged as an error and kept for [`Self::readiness`].
    pub async fn start(settings: &InferenceSettings) -> Self {
        let mut problems = Vec::new();
        let engine_settings = settings.clone();
        let engine = match tokio::task::spawn_blocking(move || InferenceEngine::start_onnx(&engine_settings)).await {
            Ok(Ok(engine)) => Some(engine),
            Ok(Err(err)) => {
                problems.push(err.to_string());
                None
            }
            Err(err) => {
                problems.push(format!("the inference engine failed to start: {err}"));
                None
            }
        };
        let dir = settings.base_model.clone();
        let base_model = match tokio::task::spawn_blocking(move || StoredModel::load(&dir)).await {
            Ok(Ok(model)) => Some(Arc::new(model)),
            Ok(Err(err)) => {
                problems.push(base_model_problem(&settings.base_model, &err.to_string()));
                None
            }
            Err(err) => {
                problems.push(base_model_problem(&settings.base_model, &err.to_string()));
                None
            }
        };
        let mut status = InferenceStatus::Unavailable(Vec::new());
        if let (Some(engine), Some(model)) = (&engine, &base_model) {
            match engine.prepare(model.clone()).await {
                Ok(provider) => {
                    let detail = format!(
                        "runs on {} with {}; base model {} ({} parameters) from {}",
                        provider.as_str(),
                        engine.description(),
                        short(&model.sha256),
                        model.config.parameter_count(),
                        settings.base_model.display()
                    );
                    tracing::info!(%detail, "inference is ready");
                    status = InferenceStatus::Ready(detail);
                }
                Err(err) => {
                    problems.push(format!("the base model from {} cannot run: {err}", settings.base_model.display()))
                }
            }
        }
        if !problems.is_empty() {
            for problem in &problems {
                tracing::error!(problem = %problem, "inference is unavailable; this process cannot denoise until it is fixed and restarted");
            }
            status = InferenceStatus::Unavailable(problems);
        }
        Self { engine, base_model, base_version: None, status }
    }

    /// Notes the base model's registry id (or why it could not be registered, which makes
    /// the process not ready: its derived series would name no model version).
    pub fn record_base_version<E: std::fmt::Display>(&mut self, registered: Result<ModelVersionId, E>) {
        match registered {
            Ok(id) => {
                self.base_version = Some(id);
                if let InferenceStatus::Ready(detail) = &mut self.status {
                    detail.push_str(&format!(", model version {id}"));
                }
            }
            Err(problem) => {
                tracing::error!(problem = %problem, "the base model could not be registered");
                let mut problems = match std::mem::replace(&mut self.status, InferenceStatus::NotNeeded) {
                    InferenceStatus::Unavailable(problems) => problems,
                    _ => Vec::new(),
                };
                problems.push(format!("the base model could not be registered in the database: {problem}"));
                self.status = InferenceStatus::Unavailable(problems);
            }
        }
    }

    /// The `inference` check of `/readyz`.
    pub fn readiness(&self) -> InferenceReadiness {
        match &self.status {
            InferenceStatus::NotNeeded => InferenceReadiness {
                ok: true,
                detail: "not needed: this process runs no jobs (--no-worker)".to_owned(),
            },
            InferenceStatus::Ready(detail) => InferenceReadiness { ok: true, detail: detail.clone() },
            InferenceStatus::Unavailable(problems) => InferenceReadiness { ok: false, detail: problems.join("; ") },
        }
    }
}

fn base_model_problem(dir: &Path, error: &str) -> String {
    format!(
        "the base model could not be loaded from {}: {error}; put a model directory there (config.json and \
         model.safetensors) or set PETAL_BASE_MODEL (--base-model) to one",
        dir.display()
    )
}
