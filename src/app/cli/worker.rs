//! `petal worker`: runs jobs only (for GPU nodes), sharing the database and blob store with
//! the API replicas; optionally serves its metrics. Stops on SIGTERM after the running job.

use anyhow::Context;
use tokio::sync::watch;

use crate::app::config::WorkerArgs;
use crate::app::{JobRunner, shutdown_signal, start_inference};
use crate::blobs::BlobStore;

pub async fn run(args: &WorkerArgs) -> anyhow::Result<()> {
    let db = super::database::open_database(&args.database).await?;
    // Started (and its problems logged) before any job runs; shared by the job handlers.
    let inference = start_inference(&db, &args.inference.settings()).await;
    let blobs = BlobStore::open(&args.blobs.blob_store).context("opening the blob store")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let endpoint = match args.metrics_listen {
        Some(address) => Some(crate::api::worker_endpoint::serve(address, db.clone(), stop_rx.clone()).await?.1),
        None => None,
    };
    let runner =
        JobRunner { db: db.clone(), blobs, inference, pipeline: args.pipeline.clone(), worker: args.jobs.settings() };
    let worker = runner.spawn(stop_rx);
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    worker.await.context("joining the worker")??;
    if let Some(endpoint) = endpoint {
        let _ = endpoint.await;
    }
    db.close().await;
    Ok(())
}
