//! The job worker: runs in `petal worker` and embedded in `petal serve`.
//!
//! It claims jobs from the shared queue (see [`crate::storage::jobs`]), runs the handler
//! registered for the job's kind while renewing the lease by heartbeat, and records the
//! outcome: success, or failure with a retry after an exponential backoff until the
//! attempt limit. Before each claim it sweeps jobs whose worker died. Delivery is at least
//! once: a job whose lease ran out may run again, so job handlers must be idempotent.
//! On PostgreSQL it
//! wakes on NOTIFY; it always polls as well. Stopping finishes the running job first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tracing::Instrument;

use crate::domain::JobId;
use crate::storage::Database;
use crate::storage::jobs::{self, Job, JobNotifications};

/// Timing of the worker; all settable small for tests.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How often an idle worker looks for work (it is also woken by NOTIFY on PostgreSQL).
    pub poll_interval: Duration,
    /// How long a claim lasts without a heartbeat before the job counts as orphaned.
    pub lease: Duration,
    /// How often a running job's lease is renewed; well below `lease`.
    pub heartbeat: Duration,
    /// First retry delay; doubled on each further attempt, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            poll_interval: Duration::from_secs(2),
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
        }
    }
}

/// Runs `pass` now and then every `every`, until `stop` turns true (a pass under way is
/// finished first): the loop of the sweepers that run beside the workers.
pub async fn every<F, Fut>(every: Duration, mut stop: watch::Receiver<bool>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    while !*stop.borrow() {
        pass().await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}

/// A job failure that no retry can fix (a destination refused the data, say): the job
/// fails at once with this reason, whatever attempts remain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PermanentFailure(pub String);

/// What runs a job of one kind.
pub type Handler = Arc<dyn Fn(Job) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

pub struct Worker {
    db: Database,
    /// Lease owner name: unique per worker, so a lease is never confused between workers.
    id: String,
    settings: WorkerSettings,
    handlers: HashMap<String, Handler>,
}

impl Worker {
    pub fn new(db: Database, settings: WorkerSettings) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "petal".to_owned());
        let id = format!("{host}-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Worker { db, id, settings, handlers: HashMap::new() }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Registers the handler for jobs of `kind`.
    pub fn register(mut self, kind: &str, handler: Handler) -> Self {
        self.handlers.insert(kind.to_owned(), handler);
        self
    }

    /// Claims and runs one ready job; returns whether there was one.
    pub async fn run_once(&self) -> anyhow::Result<bool> {
        let swept = jobs::sweep_orphans(&self.db).await?;
        if swept > 0 {
            tracing::warn!(jobs = swept, "re-queued jobs whose worker stopped renewing its lease");
        }
        let kinds: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        if kinds.is_empty() {
            return Ok(false);
        }
        let lease_ms = self.settings.lease.as_millis() as i64;
        let Some(job) = jobs::claim(&self.db, &self.id, &kinds, lease_ms).await? else {
            return Ok(false);
        };
        let waited_ms = (jobs::now_ms() - job.run_after_ms).max(0);
        crate::job_metrics::job_metrics()
            .queue_wait
            .with_label_values(&[job.kind.as_str()])
            .observe(waited_ms as f64 / 1000.0);
        let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempts);
        let Some(handler) = self.handlers.get(&job.kind).cloned() else {
            return Ok(false);
        };
        let heartbeat = self.spawn_heartbeat(&job.id);
        let (id, attempts) = (job.id.clone(), job.attempts);
        let outcome = tokio::spawn(handler(job).instrument(span.clone())).await;
        // The lease is renewed until the outcome is recorded: a slow write of the outcome
        // (a busy database) must not let the sweep hand the finished job to another worker.
        let recorded = self.record(&id, attempts, outcome, &span).await;
        heartbeat.abort();
        recorded?;
        Ok(true)
    }

    async fn record(
        &self,
        id: &JobId,
        attempts: i32,
        outcome: Result<anyhow::Result<()>, tokio::task::JoinError>,
        span: &tracing::Span,
    ) -> anyhow::Result<()> {
        match outcome {
            Ok(Ok(())) => {
                if jobs::succeed(&self.db, id, &self.id).await? {
                    tracing::info!(parent: span, "job succeeded");
                } else {
                    tracing::warn!(parent: span, "job finished after its lease was lost; another worker may repeat it");
                }
            }
            Ok(Err(err)) if err.downcast_ref::<PermanentFailure>().is_some() => {
                jobs::give_up(&self.db, id, &self.id, &format!("{err:#}")).await?;
                tracing::warn!(parent: span, error = %format!("{err:#}"), "job failed for good (not retried)");
            }
            Ok(Err(err)) => self.record_failure(id, attempts, &format!("{err:#}")).await?,
            Err(panic) => self.record_failure(id, attempts, &format!("the job stopped unexpectedly: {panic}")).await?,
        }
        Ok(())
    }

    async fn record_failure(&self, id: &JobId, attempts: i32, error: &str) -> anyhow::Result<()> {
        let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20);
        let delay = self.settings.backoff.saturating_mul(2u32.saturating_pow(exponent)).min(self.settings.max_backoff);
        jobs::fail(&self.db, id, &self.id, error, delay.as_millis() as i64).await?;
        tracing::warn!(job = %id, error, retry_in_ms = delay.as_millis() as u64, "job failed");
        Ok(())
    }

    fn spawn_heartbeat(&self, job_id: &JobId) -> tokio::task::JoinHandle<()> {
        let (db, owner, job_id) = (self.db.clone(), self.id.clone(), job_id.clone());
        let (every, lease_ms) = (self.settings.heartbeat, self.settings.lease.as_millis() as i64);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match jobs::heartbeat(&db, &job_id, &owner, lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("the job's lease was lost; another worker may run it");
                        return;
                    }
                    Err(err) => tracing::warn!(error = %err, "heartbeat failed"),
                }
            }
        })
    }

    /// Runs jobs until `stop` turns true; a running job is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let kinds: Vec<&String> = self.handlers.keys().collect();
        tracing::info!(worker = %self.id, database = self.db.engine(), ?kinds, "worker started");
        let mut notifications = JobNotifications::listen(&self.db).await;
        while !*stop.borrow() {
            match self.run_once().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => tracing::error!(error = %format!("{err:#}"), "the job queue failed; retrying"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll_interval) => {}
                () = notifications.next() => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!(worker = %self.id, "worker stopped");
        Ok(())
    }
}
