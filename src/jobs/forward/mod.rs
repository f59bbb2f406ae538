//! Forwarding: every derived series goes, by itself, to every destination that asks for
//! it (a PACS by DIMSE C-STORE or DICOMweb STOW-RS), so radiologists read petal's result
//! where they read everything else.
//!
//! Each series-and-destination pair is one durable `forward` job on the shared queue, run
//! by a worker lane of its own so that denoising never waits for a slow PACS. Transient
//! failures (connection refused, timeouts, HTTP 5xx, 408, 429, DIMSE 0xA7xx, an aborted
//! association) are retried with a backoff; permanent ones (any other HTTP 4xx, a rejected
//! association, DIMSE 0xA9xx or 0xCxxx) fail at once with the reason. An instance the
//! destination already holds counts as delivered. The state of each pair is in
//! `series_forwards` ([`crate::storage::forwards`]).

pub mod dicomweb;
pub mod dimse;
pub mod forward_job;

use std::time::Duration;

use crate::domain::Forwarded;
use crate::storage::jobs::{self, NewJob};
use crate::storage::{Database, StorageError, destinations, forwards};

/// Kind of the job that sends one series to one destination.
pub const FORWARD_JOB: &str = "forward";
/// After denoising (10) and learning rounds (20): a forward never holds up either, and it
/// runs in its own lane anyway.
pub const FORWARD_PRIORITY: i32 = 30;

/// How forwarding behaves.
#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// Attempts before a forward that keeps failing transiently is given up.
    pub max_attempts: i32,
    /// Limit for connecting and for each network exchange with a destination.
    pub timeout: Duration,
    /// petal's AE title when it calls a DIMSE destination.
    pub calling_ae_title: String,
    /// Largest PDU petal accepts from a DIMSE destination.
    pub max_pdu_length: u32,
}

impl ForwardSettings {
    /// A DIMSE destination as a node petal calls, waiting at most `timeout` for it.
    pub fn dimse_peer(&self, ae_title: &str, host: &str, port: u16, timeout: Duration) -> crate::dimse::scu::PeerNode {
        crate::dimse::scu::PeerNode {
            host: host.to_owned(),
            port,
            ae_title: ae_title.to_owned(),
            calling_ae_title: self.calling_ae_title.clone(),
            timeout,
            max_pdu_length: self.max_pdu_length,
        }
    }
}

/// What a `forward` job carries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ForwardPayload {
    pub study_uid: String,
    pub series_uid: String,
    pub destination: String,
}

/// Why a series could not be delivered, and whether trying again may help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendFailure {
    pub message: String,
    pub transient: bool,
}

impl SendFailure {
    pub fn transient(message: impl Into<String>) -> Self {
        SendFailure { message: message.into(), transient: true }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        SendFailure { message: message.into(), transient: false }
    }
}

/// Queues `series_uid` (of `study_uid`) for every destination that receives `what`;
/// returns how many destinations it was queued for.
pub async fn forward_series(
    db: &Database,
    settings: &ForwardSettings,
    study_uid: &str,
    series_uid: &str,
    what: Forwarded,
) -> Result<usize, StorageError> {
    let mut queued = 0;
    for destination in destinations::list(db).await? {
        if destination.forward.contains(&what) {
            queue(db, settings, study_uid, series_uid, &destination.name).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// Queues one series for one destination (again): its state restarts at `queued`.
pub async fn queue(
    db: &Database,
    settings: &ForwardSettings,
    study_uid: &str,
    series_uid: &str,
    destination: &str,
) -> Result<(), StorageError> {
    forwards::queue(db, series_uid, destination).await?;
    let payload = serde_json::to_value(ForwardPayload {
        study_uid: study_uid.to_owned(),
        series_uid: series_uid.to_owned(),
        destination: destination.to_owned(),
    })
    .map_err(|e| StorageError::encode("the forward payload", e))?;
    let key = format!("{FORWARD_JOB}:{destination}:{series_uid}");
    let job = NewJob {
        kind: FORWARD_JOB,
        priority: FORWARD_PRIORITY,
        payload: &payload,
        dedupe_key: Some(&key),
        max_attempts: settings.max_attempts,
    };
    jobs::enqueue(db, &job).await?;
    Ok(())
}
