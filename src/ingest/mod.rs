//! Ingest: one received DICOM instance → blob store → index.
//!
//! Instances are stored as received, except that a missing Part 10 header (preamble,
//! `DICM`, meta group length) is completed first (see [`crate::dicom::part10`]), so every
//! stored blob is a file any DICOM reader opens.
//!
//! The blob is written before the index row, so a crash can leave an orphan blob but never
//! an index row without its file. A STOW-RS request's instances are indexed in batches,
//! one transaction each; no look-up precedes the insert, which decides itself whether an
//! instance is new. Blob keys include the content hash, so two different
//! copies of one SOP Instance UID never overwrite each other; the first one indexed wins
//! and later copies are reported, not stored.
//!
//! What petal derives itself goes through here too, but only into a study that is still
//! indexed: a derived series finishing after its patient was erased is dropped, blob and
//! all, instead of bringing the patient back (see [`Origin`]).

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::blobs::{BlobError, BlobStore};
use crate::dicom::{InstanceError, ParsedInstance, Uid};
use crate::storage::index::{self, BlobFacts, Placement, Recorded};
use crate::storage::{Database, StorageError};

/// How a stored instance was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// New, now stored and indexed.
    New,
    /// Already stored with the same bytes: nothing to do.
    Duplicate,
    /// Already stored with different bytes: the first copy is kept.
    Conflicting,
}

/// Where an instance comes from, which decides what storing it may create.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// Sent to petal (STOW-RS): its patient and study are created when new. `study` is the
    /// study named in the request path, if any; the instance must belong to it.
    Received { study: Option<&'a Uid> },
    /// Derived by petal from a stored series of `study`, which must still be indexed.
    Derived { study: &'a Uid },
}

impl<'a> Origin<'a> {
    fn expected_study(self) -> Option<&'a Uid> {
        match self {
            Origin::Received { study } => study,
            Origin::Derived { study } => Some(study),
        }
    }

    fn placement(self) -> Placement {
        match self {
            Origin::Received { .. } => Placement::CreateStudy,
            Origin::Derived { .. } => Placement::ExistingStudy,
        }
    }
}

/// Why an instance was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error("the instance belongs to study {found}, not to study {expected} named in the request path")]
    StudyMismatch { expected: Uid, found: Uid },
    #[error("study {0} is no longer stored (its patient was erased); the derived instance was dropped")]
    StudyGone(Uid),
    #[error("storing the instance failed: {0}")]
    Blob(#[from] BlobError),
    #[error("indexing the instance failed: {0}")]
    Index(#[from] StorageError),
}

/// The outcome for one instance, with what is known of its identity (for the response).
#[derive(Debug)]
pub struct Receipt {
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub study_uid: Option<Uid>,
    pub series_uid: Option<Uid>,
    pub result: Result<Stored, IngestError>,
}

/// Stores a batch of instances: each is validated and its blob written, then the batch is
/// indexed in one transaction (one commit instead of one per instance). Receipts come in
/// the order given. If the batch cannot be indexed as a whole, each instance is indexed on
/// its own, so one instance the index refuses cannot take the others down with it.
pub async fn store_instances(
    db: &Database,
    blobs: &BlobStore,
    parts: Vec<Bytes>,
    origin: Origin<'_>,
) -> Vec<(Receipt, Option<ParsedInstance>)> {
    let mut out: Vec<(Receipt, Option<ParsedInstance>)> = Vec::with_capacity(parts.len());
    // Instances whose blob is written and whose index row is still to be recorded.
    let mut pending: Vec<(usize, Pending)> = Vec::new();
    for bytes in parts {
        let (receipt, parsed, blob) = prepare(blobs, bytes, origin).await;
        if let (Some(blob), Some(_)) = (blob, &parsed) {
            pending.push((out.len(), blob));
        }
        out.push((receipt, parsed));
    }
    if pending.is_empty() {
        return out;
    }
    let batch: Vec<(&ParsedInstance, BlobFacts<'_>)> =
        pending.iter().filter_map(|(at, blob)| out[*at].1.as_ref().map(|parsed| (parsed, blob.facts()))).collect();
    let recorded = match index::record_instances(db, &batch, origin.placement()).await {
        Ok(recorded) => recorded.into_iter().map(Ok).collect(),
        Err(batch_error) => {
            if pending.len() > 1 {
                tracing::warn!(error = %batch_error, instances = pending.len(), "indexing a batch failed; indexing its instances one by one");
            }
            let mut one_by_one = Vec::with_capacity(batch.len());
            for (parsed, facts) in &batch {
                one_by_one.push(index::record_instance(db, parsed, facts, origin.placement()).await);
            }
            one_by_one
        }
    };
    drop(batch);
    for ((at, blob), recorded) in pending.into_iter().zip(recorded) {
        let result = settle(db, blobs, &blob, recorded, &out[at].0).await;
        out[at].0.result = result;
    }
    out
}

/// A written blob waiting for its index row.
struct Pending {
    blob_key: String,
    sha256: String,
    size_bytes: i64,
}

impl Pending {
    fn facts(&self) -> BlobFacts<'_> {
        BlobFacts { blob_key: &self.blob_key, sha256: &self.sha256, size_bytes: self.size_bytes }
    }
}

/// Completes, parses, checks and writes the blob of one instance: its receipt (final when
/// something failed), the parsed instance, and the written blob when it awaits indexing.
async fn prepare(
    blobs: &BlobStore,
    bytes: Bytes,
    origin: Origin<'_>,
) -> (Receipt, Option<ParsedInstance>, Option<Pending>) {
    let unknown =
        |result| Receipt { sop_class_uid: None, sop_instance_uid: None, study_uid: None, series_uid: None, result };
    let bytes = match crate::dicom::part10::normalize(bytes) {
        Ok(bytes) => bytes,
        Err(err) => return (unknown(Err(err.into())), None, None),
    };
    let parse_input = bytes.clone();
    let parsed = match tokio::task::spawn_blocking(move || ParsedInstance::parse(&parse_input)).await {
        Ok(parsed) => parsed,
        Err(join) => Err(InstanceError::undecodable("the parser stopped: ", join)),
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            let (sop_class_uid, sop_instance_uid) = crate::dicom::instance::peek_identity(&bytes);
            let receipt =
                Receipt { sop_class_uid, sop_instance_uid, study_uid: None, series_uid: None, result: Err(err.into()) };
            return (receipt, None, None);
        }
    };
    let mut receipt = Receipt {
        sop_class_uid: Some(parsed.sop_class_uid.clone()),
        sop_instance_uid: Some(parsed.sop_instance_uid.to_string()),
        study_uid: Some(parsed.study_uid.clone()),
        series_uid: Some(parsed.series_uid.clone()),
        // Replaced once the instance is indexed.
        result: Ok(Stored::New),
    };
    if let Some(expected) = origin.expected_study().filter(|e| **e != parsed.study_uid) {
        receipt.result =
            Err(IngestError::StudyMismatch { expected: expected.clone(), found: parsed.study_uid.clone() });
        return (receipt, Some(parsed), None);
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let blob_key = format!(
        "instances/{}/{}/{}/{}.dcm",
        parsed.study_uid,
        parsed.series_uid,
        parsed.sop_instance_uid,
        &sha256[..16]
    );
    let size_bytes = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    if let Err(err) = blobs.put(&blob_key, bytes).await {
        receipt.result = Err(err.into());
        return (receipt, Some(parsed), None);
    }
    (receipt, Some(parsed), Some(Pending { blob_key, sha256, size_bytes }))
}

/// The outcome of an indexed (or refused) instance, removing its blob where it is not the
/// one the index names.
async fn settle(
    db: &Database,
    blobs: &BlobStore,
    blob: &Pending,
    recorded: Result<Recorded, crate::storage::StorageError>,
    receipt: &Receipt,
) -> Result<Stored, IngestError> {
    match recorded {
        Ok(Recorded::Inserted) => Ok(Stored::New),
        Ok(Recorded::AlreadyPresent { sha256: first, blob_key: first_key }) => {
            // Indexed before (a re-send, or another request first); drop our copy unless it
            // is the same blob.
            if first_key != blob.blob_key {
                blobs.delete(&blob.blob_key).await?;
            }
            Ok(compare(&first, &blob.sha256))
        }
        Ok(Recorded::StudyGone) => {
            blobs.delete(&blob.blob_key).await?;
            let study = receipt.study_uid.clone().ok_or(IngestError::Instance(InstanceError::Unreadable(
                "an instance without a study UID was indexed".to_owned(),
            )))?;
            Err(IngestError::StudyGone(study))
        }
        Err(err) => {
            remove_unless_indexed(db, blobs, blob, receipt).await;
            Err(err.into())
        }
    }
}

/// Removes a blob the index refused, unless an index row names it: an identical copy of
/// the instance, stored before, has the same key. When the index cannot say (the database
/// is down), the blob stays: an orphan at worst, never an index row without its file.
async fn remove_unless_indexed(db: &Database, blobs: &BlobStore, blob: &Pending, receipt: &Receipt) {
    let Some(uid) = receipt.sop_instance_uid.as_deref() else { return };
    match index::find_instance(db, uid).await {
        Ok(Some(stored)) if stored.blob_key == blob.blob_key => {}
        Ok(_) => {
            let _ = blobs.delete(&blob.blob_key).await;
        }
        Err(err) => {
            tracing::debug!(error = %err, "kept a blob whose indexing failed: the index cannot say if it is used")
        }
    }
}

fn compare(stored_sha256: &str, received_sha256: &str) -> Stored {
    if stored_sha256 == received_sha256 {
        Stored::Duplicate
    } else {
        tracing::warn!(
            stored = &stored_sha256[..12],
            received = &received_sha256[..12],
            "an instance was re-sent with different content; the first copy is kept"
        );
        Stored::Conflicting
    }
}
