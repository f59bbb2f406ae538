//! The DIMSE surface: petal as a C-STORE and C-ECHO service provider, beside STOW-RS, so
//! that scanners and PACS that speak only DIMSE can send it PET series.
//!
//! [`DimseServer`] listens, turns away what is not allowed (a wrong called AE title, a
//! calling node not on the allow-list, more associations than allowed at once) and serves
//! each association on its own task ([`association`]). Each C-STORE goes through the same
//! ingest as STOW-RS ([`store`]).

pub mod association;
pub mod metrics;
pub mod settings;
pub mod store;

pub use settings::{OtherObjects, ScpContext, ScpSettings};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::dimse::allow_list::AllowList;

/// A bound DIMSE listener.
pub struct DimseServer {
    listener: TcpListener,
    settings: Arc<ScpSettings>,
    context: Arc<ScpContext>,
}

impl DimseServer {
    /// Binds the listener (port 0 picks a free port, see [`Self::port`]).
    pub async fn bind(settings: ScpSettings, context: ScpContext) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.listen).await?;
        if matches!(*settings.calling, AllowList::Any) {
            tracing::warn!(
                "PETAL_DIMSE_CALLING_AES is `*`: any DICOM node that reaches this port may store instances; \
                 list the AE titles (and addresses) of your scanners and PACS instead"
            );
        }
        Ok(DimseServer { listener, settings: Arc::new(settings), context: Arc::new(context) })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Accepts associations until `stop` turns true, then lets open ones finish for up to
    /// the timeout before dropping them.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let DimseServer { listener, settings, context } = self;
        tracing::info!(
            address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            ae_title = %settings.ae_title,
            "DIMSE C-STORE SCP is listening"
        );
        let slots = Arc::new(Semaphore::new(settings.max_associations));
        let next_id = AtomicU64::new(1);
        let mut associations = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.wait_for(|stopping| *stopping) => break,
            };
            while associations.try_join_next().is_some() {}
            let (socket, peer) = match accepted {
                Ok(connection) => connection,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a DIMSE connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let settings = settings.clone();
            match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let context = context.clone();
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    associations.spawn(async move {
                        association::serve(socket, peer.ip(), settings, context, id).await;
                        drop(slot);
                    });
                }
                Err(_) => {
                    associations.spawn(async move { association::refuse_busy(socket, &settings).await });
                }
            }
        }
        drop(listener);
        let drained =
            tokio::time::timeout(settings.timeout, async { while associations.join_next().await.is_some() {} });
        if drained.await.is_err() {
            tracing::warn!("DIMSE associations still open at shutdown were dropped");
            associations.abort_all();
        }
    }
}
