//! One C-STORE request: the received data set becomes a Part 10 file and goes through the
//! same ingest as a STOW-RS instance (validated, blob then index, idempotent by SOP
//! Instance UID, noted for its series' completion), and the status answered says truthfully
//! what happened.
//!
//! | outcome | status |
//! |---|---|
//! | stored, or stored before with the same bytes | 0x0000 success |
//! | stored before with other bytes (first copy kept) | 0xB006 warning |
//! | a non-PET object of a PET/CT study (default) | 0x0000 success, dropped and counted |
//! | free disk below `PETAL_DIMSE_MIN_FREE_DISK`, storage or database unavailable | 0xA700 out of resources |
//! | required attributes missing or invalid, identity differs from the command | 0xA900 does not match SOP class |
//! | not a readable data set | 0xC000 cannot understand |
//!
//! A failure leaves nothing behind: ingest deletes the blob when indexing fails.

use std::collections::BTreeSet;

use super::metrics::{dimse_metrics, status_label};
use super::settings::ScpContext;
use crate::dicom::part10::{self, DataSetIdentity};
use crate::dicom::{InstanceError, Uid};
use crate::dimse::command::{Command, status};
use crate::ingest::{IngestError, Origin, Stored};
use crate::storage::audit::{self, NewAuditEvent, Outcome};
use crate::storage::index;

/// Who sent the instances of one association, for the audit trail and the logs.
#[derive(Debug, Clone)]
pub struct Sender {
    /// `dimse:AE@address`, the audit trail's actor.
    pub actor: String,
    /// The calling AE title.
    pub ae_title: String,
    /// Identifies the association in the audit trail (its `request_id`) and logs.
    pub association_id: String,
}

/// What one association has written to the audit trail already: one event per study and
/// outcome, like one STOW-RS request.
#[derive(Debug, Default)]
pub struct AuditedStudies {
    recorded: BTreeSet<(Option<Uid>, &'static str)>,
}

/// The answer to one C-STORE.
#[derive(Debug)]
pub struct StoreStatus {
    pub code: u16,
    pub comment: Option<String>,
}

impl StoreStatus {
    fn new(code: u16, comment: impl Into<String>) -> Self {
        StoreStatus { code, comment: Some(comment.into()) }
    }

    fn success() -> Self {
        StoreStatus { code: status::SUCCESS, comment: None }
    }
}

/// Handles one C-STORE whose data set arrived in `transfer_syntax`.
pub async fn handle_store(
    context: &ScpContext,
    sender: &Sender,
    audited: &mut AuditedStudies,
    request: &Command,
    transfer_syntax: &str,
    data_set: Vec<u8>,
) -> StoreStatus {
    dimse_metrics().received_bytes.inc_by(data_set.len() as u64);
    let (answer, label) = store(context, sender, audited, (request, transfer_syntax), data_set).await;
    dimse_metrics().stores.with_label_values(&[label]).inc();
    answer
}

/// Stores the data set of `request`, received in the given transfer syntax; the answer and
/// the label it is counted under.
async fn store(
    context: &ScpContext,
    sender: &Sender,
    audited: &mut AuditedStudies,
    (request, transfer_syntax): (&Command, &str),
    data_set: Vec<u8>,
) -> (StoreStatus, &'static str) {
    let (Some(sop_class_uid), Some(sop_instance_uid)) =
        (request.affected_sop_class_uid.clone(), request.affected_sop_instance_uid.clone())
    else {
        let status = StoreStatus::new(status::CANNOT_UNDERSTAND, "the C-STORE request names no SOP class or instance");
        return (status, "cannot_understand");
    };
    if !crate::dicom::sop_class::is_accepted(&sop_class_uid) {
        // Only reached when other objects are accepted (the default): a PET/CT study is sent
        // whole, and its CT must not make the sender report errors.
        tracing::debug!(association = %sender.association_id, sop_class = %sop_class_uid, "dropped a non-PET object");
        return (StoreStatus::success(), "dropped");
    }
    if let Some(status) = below_disk_floor(context) {
        return with_label(status);
    }
    let identity = DataSetIdentity { sop_class_uid, sop_instance_uid, transfer_syntax_uid: transfer_syntax.to_owned() };
    let file = match part10::from_data_set(&identity, &data_set, Some(&sender.ae_title)) {
        Ok(file) => file,
        Err(err) => return with_label(StoreStatus::new(status::CANNOT_UNDERSTAND, err.to_string())),
    };
    drop(data_set);
    if let Some(status) = identity_mismatch(&file, &identity) {
        return with_label(status);
    }
    let receipt = crate::jobs::denoise::completion::store_and_note(
        &context.db,
        &context.blobs,
        file,
        Origin::Received { study: None },
        &context.rules,
    )
    .await;
    let answer = match &receipt.result {
        Ok(Stored::New | Stored::Duplicate) => StoreStatus::success(),
        Ok(Stored::Conflicting) => {
            StoreStatus::new(status::ELEMENTS_DISCARDED, "stored before with other content; the first copy is kept")
        }
        Err(err) => failure_status(err),
    };
    let outcome = if status::is_stored(answer.code) { Outcome::Success } else { Outcome::Failure };
    if let Err(err) = record_audit(context, sender, audited, receipt.study_uid.as_ref(), outcome).await {
        tracing::error!(association = %sender.association_id, error = %err, "auditing a C-STORE failed");
        return with_label(StoreStatus::new(status::OUT_OF_RESOURCES, "the audit trail is unavailable; retry later"));
    }
    with_label(answer)
}

fn with_label(status: StoreStatus) -> (StoreStatus, &'static str) {
    let label = status_label(status.code);
    (status, label)
}

fn below_disk_floor(context: &ScpContext) -> Option<StoreStatus> {
    let free = context.blobs.free_bytes()?;
    (free < context.min_free_disk_bytes).then(|| {
        tracing::warn!(free_bytes = free, floor_bytes = context.min_free_disk_bytes, "C-STORE refused: disk floor");
        StoreStatus::new(status::OUT_OF_RESOURCES, "free disk is below petal's floor; retry later")
    })
}

/// The data set must be the instance the command announced (PS3.4 §B.2.3).
fn identity_mismatch(file: &[u8], identity: &DataSetIdentity) -> Option<StoreStatus> {
    let (class, instance) = crate::dicom::instance::peek_identity(file);
    // An unreadable data set is left to ingest, which says why.
    let (class, instance) = (class?, instance?);
    if class != identity.sop_class_uid || instance != identity.sop_instance_uid {
        return Some(StoreStatus::new(
            status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            "the data set's SOP class or instance UID differs from the command's",
        ));
    }
    None
}

fn failure_status(err: &IngestError) -> StoreStatus {
    let code = match err {
        IngestError::Instance(InstanceError::Unreadable(_) | InstanceError::Undecodable { .. }) => {
            status::CANNOT_UNDERSTAND
        }
        IngestError::Instance(
            InstanceError::MissingAttribute { .. } | InstanceError::BadUid { .. } | InstanceError::NotPet(_),
        ) => status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
        IngestError::StudyMismatch { .. } | IngestError::StudyGone(_) => status::PROCESSING_FAILURE,
        IngestError::Blob(_) | IngestError::Index(_) => {
            tracing::error!(error = %err, "storing a C-STORE instance failed");
            status::OUT_OF_RESOURCES
        }
    };
    StoreStatus::new(code, err.to_string())
}

/// One audit event per study and outcome within the association (like one STOW-RS request).
async fn record_audit(
    context: &ScpContext,
    sender: &Sender,
    audited: &mut AuditedStudies,
    study: Option<&Uid>,
    outcome: Outcome,
) -> Result<(), crate::storage::StorageError> {
    let key = (study.cloned(), outcome.as_str());
    if audited.recorded.contains(&key) {
        return Ok(());
    }
    let (resource, patient_key) = match study {
        Some(study) => (format!("/dicomweb/studies/{study}"), index::study_patient(&context.db, study.as_str()).await?),
        None => ("/dicomweb/studies".to_owned(), None),
    };
    audit::append(
        &context.db,
        &NewAuditEvent {
            actor: &sender.actor,
            action: "dicom.store",
            resource: &resource,
            patient_key: patient_key.as_ref(),
            outcome,
            request_id: Some(&sender.association_id),
            detail: None,
        },
    )
    .await?;
    audited.recorded.insert(key);
    Ok(())
}
