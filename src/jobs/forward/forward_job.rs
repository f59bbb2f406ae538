//! The `forward` job: sends one stored series to one destination, and records the outcome
//! in the series' forward state. Sending again is harmless: destinations keep one copy
//! per SOP Instance UID, and petal counts an instance they already hold as delivered.

use std::sync::Arc;

use anyhow::Context;

use super::{ForwardPayload, ForwardSettings, SendFailure};
use crate::blobs::BlobStore;
use crate::domain::Endpoint;
use crate::jobs::worker::{Handler, PermanentFailure};
use crate::storage::jobs::Job;
use crate::storage::{Database, destinations, forwards, index};

/// What a forward job needs.
pub struct ForwardJobContext {
    pub db: Database,
    pub blobs: BlobStore,
    pub settings: ForwardSettings,
}

pub fn handler(context: Arc<ForwardJobContext>) -> Handler {
    Arc::new(move |job: Job| {
        let context = context.clone();
        Box::pin(async move { run(&context, job).await })
    })
}

async fn run(context: &ForwardJobContext, job: Job) -> anyhow::Result<()> {
    let payload: ForwardPayload = serde_json::from_str(&job.payload).context("reading the job's payload")?;
    let db = &context.db;
    let Some(destination) = destinations::get(db, &payload.destination).await? else {
        tracing::info!("the destination was deleted; nothing to send");
        return Ok(());
    };
    if !forwards::mark_sending(db, &payload.series_uid, &destination.name).await? {
        tracing::info!("the forward was withdrawn; nothing to send");
        return Ok(());
    }
    let instances = index::instances_in(db, &payload.study_uid, Some(&payload.series_uid), None).await?;
    let sent = if instances.is_empty() {
        Err(SendFailure::permanent("the series is no longer stored (erased or deleted)"))
    } else {
        match &destination.endpoint {
            Endpoint::Dimse { ae_title, host, port } => {
                let peer = context.settings.dimse_peer(ae_title, host, *port, context.settings.timeout);
                super::dimse::send_series(&peer, &context.blobs, &instances).await
            }
            Endpoint::Dicomweb { url, auth } => {
                super::dicomweb::send_series(url, auth.as_ref(), context.settings.timeout, &context.blobs, &instances)
                    .await
            }
        }
    };
    let metrics = crate::job_metrics::job_metrics();
    match sent {
        Ok(()) => {
            forwards::mark_sent(db, &payload.series_uid, &destination.name).await?;
            metrics.forwards.with_label_values(&[destination.kind(), "sent"]).inc();
            tracing::info!(destination = %destination.name, instances = instances.len(), "series forwarded");
            Ok(())
        }
        Err(failure) => {
            let retried = failure.transient && job.attempts < job.max_attempts;
            forwards::mark_unsent(db, &payload.series_uid, &destination.name, &failure.message, retried).await?;
            let outcome = if retried { "retry" } else { "failed" };
            metrics.forwards.with_label_values(&[destination.kind(), outcome]).inc();
            if failure.transient {
                Err(anyhow::Error::new(failure).context(format!("forwarding to `{}`", destination.name)))
            } else {
                Err(PermanentFailure(format!("forwarding to `{}`: {}", destination.name, failure.message)).into())
            }
        }
    }
}
