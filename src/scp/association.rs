//! One association with a sending node, from its request to its release: who may open it,
//! which presentation contexts it gets, and the loop that answers each C-ECHO and C-STORE.

use std::net::IpAddr;
use std::sync::Arc;

use dicom_ul::Pdu;
use dicom_ul::association::server::{AccessControl, ServerAssociationOptions};
use dicom_ul::association::{Association, AsyncServerAssociation};
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason, AssociationRJServiceUserReason,
    AssociationRJSource, UserIdentity,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::metrics::dimse_metrics;
use super::settings::{OtherObjects, ScpContext, ScpSettings};
use super::store::{AuditedStudies, Sender, handle_store};
use crate::dimse::allow_list::AllowList;
use crate::dimse::command::{Command, CommandField, status};
use crate::dimse::message::{self, Incoming, Message, MessageError};
use crate::dimse::syntaxes::{self, ACCEPTED_TRANSFER_SYNTAXES, VERIFICATION};

/// Accepts an association only when it calls petal's AE title, from a node on the list.
struct NodeAccess {
    calling: Arc<AllowList>,
    peer: IpAddr,
}

impl AccessControl for NodeAccess {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            tracing::warn!(peer = %self.peer, called = called_ae_title.trim(), "association refused: wrong called AE title");
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if !self.calling.allows(calling_ae_title, self.peer) {
            tracing::warn!(
                peer = %self.peer,
                calling = calling_ae_title.trim(),
                "association refused: calling AE title or address not on PETAL_DIMSE_CALLING_AES"
            );
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

fn options(
    settings: &ScpSettings,
    peer: IpAddr,
) -> ServerAssociationOptions<'static, NodeAccess, dicom_ul::association::server::DefaultNegotiation> {
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(NodeAccess { calling: settings.calling.clone(), peer })
        .ae_title(settings.ae_title.clone())
        .max_pdu_length(settings.max_pdu_length)
        .strict(false)
        .read_timeout(settings.timeout)
        .write_timeout(settings.timeout)
        .with_abstract_syntax(VERIFICATION);
    for sop_class in crate::dicom::sop_class::ACCEPTED {
        options = options.with_abstract_syntax(sop_class);
    }
    for transfer_syntax in ACCEPTED_TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(transfer_syntax);
    }
    // Accepting every other storage class lets a PET/CT study be sent whole; its other
    // objects are answered success and dropped (see `store`).
    options.promiscuous(settings.other_objects == OtherObjects::Drop)
}

/// Serves one connection: negotiation, then messages until release or abort.
pub async fn serve(socket: TcpStream, peer: IpAddr, settings: Arc<ScpSettings>, context: Arc<ScpContext>, id: u64) {
    let metrics = dimse_metrics();
    let mut association = match options(&settings, peer).establish_async(socket).await {
        Ok(association) => association,
        Err(dicom_ul::association::Error::Rejected { .. }) => {
            metrics.associations.with_label_values(&["rejected"]).inc();
            return;
        }
        Err(err) => {
            metrics.associations.with_label_values(&["failed"]).inc();
            tracing::warn!(peer = %peer, error = %err, "a DIMSE association failed before acceptance");
            return;
        }
    };
    metrics.associations.with_label_values(&["accepted"]).inc();
    metrics.active.inc();
    let ae_title = association.peer_ae_title().trim().to_owned();
    let sender = Sender { actor: format!("dimse:{ae_title}@{peer}"), ae_title, association_id: format!("dimse-{id}") };
    tracing::info!(association = %sender.association_id, calling = %sender.ae_title, peer = %peer, "DIMSE association accepted");
    let released = exchange(&mut association, &settings, &context, &sender).await;
    match released {
        Ok(true) => {
            let _ = association.send(&Pdu::ReleaseRP).await;
            let _ = association.inner_stream().shutdown().await;
        }
        Ok(false) => {}
        Err(err) => {
            tracing::warn!(association = %sender.association_id, error = %err, "DIMSE association aborted");
            let _ = association.abort().await;
        }
    }
    metrics.active.dec();
}

/// Answers messages until the peer releases (`true`) or aborts (`false`).
async fn exchange(
    association: &mut AsyncServerAssociation<TcpStream>,
    settings: &ScpSettings,
    context: &ScpContext,
    sender: &Sender,
) -> Result<bool, MessageError> {
    let mut audited = AuditedStudies::default();
    loop {
        let message = match message::receive(association, settings.max_data_set_bytes).await? {
            Incoming::Message(message) => message,
            Incoming::ReleaseRequested => return Ok(true),
            Incoming::Aborted => return Ok(false),
        };
        let Message { presentation_context_id, command, data_set } = message;
        let Some(transfer_syntax) = association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.id == presentation_context_id)
            .map(|pc| syntaxes::trim(&pc.transfer_syntax).to_owned())
        else {
            return Err(MessageError::Protocol("a message arrived on a presentation context that was not negotiated"));
        };
        let response = match (command.field, data_set) {
            (CommandField::EchoRequest, _) => Command::response_to(&command, status::SUCCESS, None),
            (CommandField::StoreRequest, Some(data_set)) => {
                let answer = handle_store(context, sender, &mut audited, &command, &transfer_syntax, data_set).await;
                Command::response_to(&command, answer.code, answer.comment.as_deref())
            }
            (CommandField::StoreRequest, None) => Command::response_to(
                &command,
                status::CANNOT_UNDERSTAND,
                Some("the C-STORE request carried no data set"),
            ),
            (field, _) if field.is_response() => continue,
            (_, _) => Command::response_to(
                &command,
                status::UNRECOGNIZED_OPERATION,
                Some("petal provides C-ECHO and C-STORE only"),
            ),
        };
        message::send(association, presentation_context_id, &response, None).await?;
    }
}

/// Turns a connection away with a transient rejection (local limit exceeded), after reading
/// its association request: the sender should try again later.
pub async fn refuse_busy(mut socket: TcpStream, settings: &ScpSettings) {
    dimse_metrics().associations.with_label_values(&["busy"]).inc();
    let mut buffer = bytes::BytesMut::new();
    let read =
        dicom_ul::association::read_pdu_from_wire_async(&mut socket, &mut buffer, settings.max_pdu_length, false);
    if !matches!(tokio::time::timeout(settings.timeout, read).await, Ok(Ok(Pdu::AssociationRQ(_)))) {
        return;
    }
    let rejection = Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    });
    let mut bytes = Vec::new();
    if dicom_ul::write_pdu(&mut bytes, &rejection).is_ok() {
        let _ = socket.write_all(&bytes).await;
        let _ = socket.shutdown().await;
    }
}
