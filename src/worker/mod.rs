//! The job worker: runs in `petal worker` and embedded in `petal serve`.
//!
//! Jobs (denoise, fine-tune) arrive with the job queue; until then the worker only holds
//! its place in the process lifecycle so that `serve`, `serve --no-worker` and `worker`
//! already start, report and stop the way they will with jobs.

use tokio::sync::watch;

use crate::storage::Database;

/// Runs until `stop` turns true.
pub async fn run(db: Database, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    tracing::info!(database = db.engine(), "worker started; no job kinds are enabled yet");
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    tracing::info!("worker stopped");
    Ok(())
}
