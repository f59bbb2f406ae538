//! Ingest: one received DICOM instance → blob store → index.
//!
//! Instances are stored as received, except that a missing Part 10 header (preamble,
//! `DICM`, meta group length) is completed first (see [`crate::dicom::part10`]), so every
//! stored blob is a file any DICOM reader opens.
//!
//! The blob is written before the index row, so a crash can leave an orphan blob but never
//! an index row without its file. Blob keys include the content hash, so two different
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

/// Stores one instance (blob, then index). Returns the receipt and, when the instance could
/// be parsed, the parsed instance, which callers note for its series' completion
/// ([`crate::jobs::denoise::completion::store_and_note`] does both).
pub async fn store_instance(
    db: &Database,
    blobs: &BlobStore,
    bytes: Bytes,
    origin: Origin<'_>,
) -> (Receipt, Option<ParsedInstance>) {
    let bytes = match crate::dicom::part10::normalize(bytes) {
        Ok(bytes) => bytes,
        Err(err) => {
            let receipt = Receipt {
                sop_class_uid: None,
                sop_instance_uid: None,
                study_uid: None,
                series_uid: None,
                result: Err(err.into()),
            };
            return (receipt, None);
        }
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
            return (receipt, None);
        }
    };
    let result = store_parsed(db, blobs, &parsed, bytes, origin).await;
    let receipt = Receipt {
        sop_class_uid: Some(parsed.sop_class_uid.clone()),
        sop_instance_uid: Some(parsed.sop_instance_uid.to_string()),
        study_uid: Some(parsed.study_uid.clone()),
        series_uid: Some(parsed.series_uid.clone()),
        result,
    };
    (receipt, Some(parsed))
}

async fn store_parsed(
    db: &Database,
    blobs: &BlobStore,
    parsed: &ParsedInstance,
    bytes: Bytes,
    origin: Origin<'_>,
) -> Result<Stored, IngestError> {
    if let Some(expected) = origin.expected_study().filter(|e| **e != parsed.study_uid) {
        return Err(IngestError::StudyMismatch { expected: expected.clone(), found: parsed.study_uid.clone() });
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    if let Some(existing) = index::find_instance(db, parsed.sop_instance_uid.as_str()).await? {
        return Ok(compare(&existing.sha256, &sha256));
    }
    let blob_key = format!(
        "instances/{}/{}/{}/{}.dcm",
        parsed.study_uid,
        parsed.series_uid,
        parsed.sop_instance_uid,
        &sha256[..16]
    );
    let size_bytes = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    blobs.put(&blob_key, bytes).await?;
    let facts = BlobFacts { blob_key: &blob_key, sha256: &sha256, size_bytes };
    match index::record_instance(db, parsed, &facts, origin.placement()).await {
        Ok(Recorded::Inserted) => Ok(Stored::New),
        Ok(Recorded::AlreadyPresent { sha256: first, blob_key: first_key }) => {
            // Another request indexed this instance first; drop our copy unless it is the same blob.
            if first_key != blob_key {
                blobs.delete(&blob_key).await?;
            }
            Ok(compare(&first, &sha256))
        }
        Ok(Recorded::StudyGone) => {
            blobs.delete(&blob_key).await?;
            Err(IngestError::StudyGone(parsed.study_uid.clone()))
        }
        Err(err) => {
            // Leave no orphan when the index refused the row.
            let _ = blobs.delete(&blob_key).await;
            Err(err.into())
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
