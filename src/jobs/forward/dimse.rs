//! Forwarding by DIMSE: one association per series, one C-STORE per instance, in the
//! transfer syntax the instance is stored in, or re-encoded as explicit VR little endian
//! when that is the only one the destination accepts.

use super::SendFailure;
use crate::blobs::BlobStore;
use crate::dicom::part10;
use crate::dicom::transfer_syntax::{EXPLICIT_VR_LITTLE_ENDIAN, transcode};
use crate::dimse::command::status;
use crate::dimse::scu::{PeerNode, ScuError};
use crate::storage::index::StoredInstance;

/// DIMSE status of a duplicate SOP instance: the destination already holds it.
const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;

/// Sends every instance of a series over one association.
pub async fn send_series(peer: &PeerNode, blobs: &BlobStore, instances: &[StoredInstance]) -> Result<(), SendFailure> {
    let mut wanted: Vec<(String, String)> =
        instances.iter().map(|i| (i.sop_class_uid.clone(), i.transfer_syntax_uid.clone())).collect();
    wanted.sort();
    wanted.dedup();
    let mut session = peer.open_store_session(&wanted).await.map_err(scu_failure)?;
    let result = send_each(&mut session, blobs, instances).await;
    session.release().await;
    result
}

async fn send_each(
    session: &mut crate::dimse::scu::StoreSession,
    blobs: &BlobStore,
    instances: &[StoredInstance],
) -> Result<(), SendFailure> {
    for instance in instances {
        let Some((context, syntax)) = session.context_for(&instance.sop_class_uid, &instance.transfer_syntax_uid)
        else {
            return Err(SendFailure::permanent(format!(
                "{} accepts SOP class {} in neither transfer syntax {} nor explicit VR little endian",
                session.node(),
                instance.sop_class_uid,
                instance.transfer_syntax_uid
            )));
        };
        let file = blobs
            .get(&instance.blob_key)
            .await
            .map_err(|e| SendFailure::transient(format!("reading a stored instance: {e}")))?;
        let file = if syntax == instance.transfer_syntax_uid {
            file
        } else {
            debug_assert_eq!(syntax, EXPLICIT_VR_LITTLE_ENDIAN);
            tokio::task::spawn_blocking(move || transcode(file, EXPLICIT_VR_LITTLE_ENDIAN))
                .await
                .map_err(|e| SendFailure::transient(format!("re-encoding an instance stopped: {e}")))?
                .map_err(|e| SendFailure::permanent(format!("re-encoding an instance: {e}")))?
        };
        let (identity, data_set) =
            part10::split(&file).map_err(|e| SendFailure::permanent(format!("a stored instance: {e}")))?;
        let answer = session.store(context, &identity, data_set).await.map_err(scu_failure)?;
        classify(answer.status, answer.error_comment.as_deref(), &session.node())?;
    }
    Ok(())
}

/// Whether a C-STORE status means delivered, retry later, or never.
fn classify(code: u16, comment: Option<&str>, node: &str) -> Result<(), SendFailure> {
    if status::is_stored(code) || code == DUPLICATE_SOP_INSTANCE {
        return Ok(());
    }
    let message = format!(
        "{node} answered C-STORE with 0x{code:04X} ({}){}",
        status::describe(code),
        comment.map(|c| format!(": {c}")).unwrap_or_default()
    );
    if (0xA700..=0xA7FF).contains(&code) {
        Err(SendFailure::transient(message))
    } else {
        Err(SendFailure::permanent(message))
    }
}

fn scu_failure(error: ScuError) -> SendFailure {
    let transient = error.is_transient();
    SendFailure { message: error.to_string(), transient }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn statuses_sort_into_delivered_retry_and_never() {
        assert!(classify(0x0000, None, "n").is_ok());
        assert!(classify(0xB000, None, "n").is_ok());
        assert!(classify(0x0111, None, "n").is_ok(), "a duplicate is delivered");
        assert!(classify(0xA700, None, "n").expect_err("refused").transient);
        assert!(!classify(0xA900, None, "n").expect_err("error").transient);
        assert!(!classify(0xC000, Some("bad"), "n").expect_err("error").transient);
    }
}
