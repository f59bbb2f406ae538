//! Assembling and running the server: `Application::build(config)` opens the database and
//! blob store, makes sure an admin token exists, binds the port, and returns something
//! tests can start on port 0 and stop.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::AuthMode;
use crate::api::{self, AppState, HttpMetrics};
use crate::app::config::{PipelineArgs, ServeArgs};
use crate::auth::{self, AdminBootstrap};
use crate::blobs::BlobStore;
use crate::inference::InferenceContext;
use crate::jobs::worker::{Worker, WorkerSettings};
use crate::scp::{DimseServer, ScpContext};
use crate::storage::Database;

/// A bound, ready-to-run petal server (with its embedded worker unless `--no-worker`).
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    worker_settings: WorkerSettings,
    pipeline: PipelineArgs,
    /// The DIMSE C-STORE listener, when `--dimse-listen` is set.
    dimse: Option<DimseServer>,
}

impl Application {
    pub async fn build(config: ServeArgs) -> anyhow::Result<Self> {
        // Settings errors come before any side effect.
        let dimse_settings = config.dimse.settings(&config.pipeline.forwarding.dimse_ae_title)?;
        let db = Database::connect(&config.database.url(), config.database.db_max_connections)
            .await
            .context("connecting to the database")?;
        db.migrate().await.context("applying database migrations")?;
        let blobs = BlobStore::open(&config.blobs.blob_store).context("opening the blob store")?;
        match config.auth {
            AuthMode::Disabled => {
                tracing::warn!("authentication is DISABLED: every request acts as admin; use this for local demos only")
            }
            AuthMode::Enabled => report_bootstrap(
                auth::ensure_admin_token(&db, &config.admin_token_file).await?,
                &config.admin_token_file,
            ),
        }
        let metrics = Arc::new(HttpMetrics::new().context("registering metrics")?);
        // The embedded worker runs inference; an API-only process needs none.
        let inference = if config.no_worker {
            InferenceContext::not_needed()
        } else {
            start_inference(&db, &config.inference.settings()).await
        };
        let state = AppState {
            db,
            blobs,
            auth: config.auth,
            metrics,
            runs_worker: !config.no_worker,
            inference,
            upload_body_limit: config.http.upload_body_limit,
            series_rules: config.pipeline.rules(),
            learning: config.pipeline.learning_settings(),
            sessions: config.http.sessions.settings(),
            forwarding: config.pipeline.forwarding.settings(),
        };
        let limits = config.http.limits();
        let router = api::router(state.clone(), &limits);
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
        let dimse = match dimse_settings {
            Some(settings) => {
                let listen = settings.listen;
                let context = ScpContext {
                    db: state.db.clone(),
                    blobs: state.blobs.clone(),
                    rules: state.series_rules.clone(),
                    min_free_disk_bytes: config.dimse.dimse_min_free_disk,
                };
                let server = DimseServer::bind(settings, context)
                    .await
                    .with_context(|| format!("listening for DIMSE on {listen}"))?;
                Some(server)
            }
            None => None,
        };
        Ok(Application {
            listener,
            router,
            state,
            worker_settings: config.jobs.settings(),
            pipeline: config.pipeline,
            dimse,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// The DIMSE port actually bound, when DIMSE is on.
    pub fn dimse_port(&self) -> Option<u16> {
        self.dimse.as_ref().map(DimseServer::port)
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests and exits.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and jobs.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, router, state, worker_settings, pipeline, dimse } = self;
        tracing::info!(
            address = %listener.local_addr().context("reading the bound address")?,
            database = state.db.engine(),
            blobs = state.blobs.location(),
            worker = state.runs_worker,
            "petal is serving"
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = state.runs_worker.then(|| {
            let jobs = JobRunner {
                db: state.db.clone(),
                blobs: state.blobs.clone(),
                inference: state.inference.clone(),
                pipeline: pipeline.clone(),
                worker: worker_settings.clone(),
            };
            jobs.spawn(stop_rx.clone())
        });
        let dimse = dimse.map(|server| tokio::spawn(server.run(stop_rx)));
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down: finishing in-flight requests");
            })
            .await
            .context("serving HTTP")?;
        let _ = stop_tx.send(true);
        if let Some(dimse) = dimse {
            dimse.await.context("joining the DIMSE listener")?;
        }
        if let Some(worker) = worker {
            worker.await.context("joining the embedded worker")??;
        }
        state.db.close().await;
        tracing::info!("petal stopped");
        Ok(())
    }
}

fn report_bootstrap(outcome: AdminBootstrap, file: &std::path::Path) {
    match outcome {
        AdminBootstrap::AlreadyPresent => {}
        AdminBootstrap::Created => tracing::info!(
            file = %file.display(),
            "no admin token existed: created one and wrote it to this file (readable by this user only)"
        ),
        AdminBootstrap::ImportedFromFile => {
            tracing::info!(file = %file.display(), "registered the admin token found in this file")
        }
    }
}

/// Completes on SIGTERM (Kubernetes, systemd) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}

/// Starts inference for a process that runs jobs, and registers its base model as a model
/// version so that what it produces can name the version.
pub async fn start_inference(db: &Database, settings: &crate::inference::InferenceSettings) -> InferenceContext {
    let mut inference = InferenceContext::start(settings).await;
    if let Some(model) = inference.base_model.clone() {
        let registered = crate::storage::models::register_base_model(db, &model, &settings.base_model).await;
        inference.record_base_version(registered);
    }
    inference
}

/// The job-running side of a process (`serve` with its embedded worker, or `worker`).
pub struct JobRunner {
    pub db: Database,
    pub blobs: BlobStore,
    pub inference: InferenceContext,
    pub pipeline: PipelineArgs,
    pub worker: WorkerSettings,
}

impl JobRunner {
    /// Starts the worker with every job handler, and the series completion sweeper; both
    /// stop when `stop` turns true (a running job is finished first).
    pub fn spawn(self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        use crate::jobs::denoise::{completion, denoise_job};
        use crate::jobs::learning::{detection, round_job};
        let learning = self.pipeline.learning_settings();
        let denoise = Arc::new(denoise_job::DenoiseJobContext {
            db: self.db.clone(),
            blobs: self.blobs.clone(),
            inference: self.inference.clone(),
            naming: self.pipeline.naming(),
            rules: self.pipeline.rules(),
            forwarding: self.pipeline.forwarding.settings(),
        });
        let forwards = Arc::new(crate::jobs::forward::forward_job::ForwardJobContext {
            db: self.db.clone(),
            blobs: self.blobs.clone(),
            settings: self.pipeline.forwarding.settings(),
        });
        let rounds = Arc::new(round_job::RoundJobContext {
            db: self.db.clone(),
            blobs: self.blobs,
            inference: self.inference,
            learning: learning.clone(),
            shutdown: stop.clone(),
        });
        // Two lanes: a round takes minutes, and series arriving meanwhile must not wait for
        // it, so denoise jobs and learning rounds are claimed by workers of their own.
        let denoiser = Worker::new(self.db.clone(), self.worker.clone())
            .register(completion::DENOISE_JOB, denoise_job::handler(denoise));
        let learner = Worker::new(self.db.clone(), self.worker.clone())
            .register(crate::storage::rounds::FINE_TUNE_JOB, round_job::handler(rounds));
        let learner = tokio::spawn(learner.run(stop.clone()));
        // A third lane: a slow or unreachable PACS must hold up neither denoising nor learning.
        let forwarder = Worker::new(self.db.clone(), self.pipeline.forwarding.worker_settings(&self.worker))
            .register(crate::jobs::forward::FORWARD_JOB, crate::jobs::forward::forward_job::handler(forwards));
        let forwarder = tokio::spawn(forwarder.run(stop.clone()));
        let every = self.worker.poll_interval;
        let sweeper =
            tokio::spawn(completion::run_sweeper(self.db.clone(), self.pipeline.completion(), every, stop.clone()));
        let learning_sweeper = tokio::spawn(detection::run_sweeper(self.db, learning, every, stop.clone()));
        tokio::spawn(async move {
            let denoised = denoiser.run(stop).await;
            let learned = learner.await.context("joining the learning worker");
            let forwarded = forwarder.await.context("joining the forwarding worker");
            let _ = sweeper.await;
            let _ = learning_sweeper.await;
            denoised.and(learned?).and(forwarded?)
        })
    }
}
