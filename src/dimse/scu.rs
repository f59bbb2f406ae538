//! petal as a DIMSE service user: C-ECHO and C-STORE to another node (a PACS), over one
//! association per call, released cleanly afterwards.
//!
//! [`PeerNode::store`] proposes the data set's own transfer syntax only and sends it as it
//! is. A [`StoreSession`] (forwarding a series over one association) proposes, for each
//! SOP class and stored syntax, that syntax with explicit VR little endian as a fallback;
//! the caller re-encodes an instance when the peer accepted only the fallback.

use std::time::Duration;

use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::pdu::PresentationContextResultReason;

use super::command::{Command, CommandField, status};
use super::message::{self, Incoming, MessageError};
use super::syntaxes::{self, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION};
use crate::dicom::part10::DataSetIdentity;

/// The node to call and how.
#[derive(Debug, Clone)]
pub struct PeerNode {
    pub host: String,
    pub port: u16,
    /// The peer's AE title (the called AE).
    pub ae_title: String,
    /// petal's own AE title (the calling AE).
    pub calling_ae_title: String,
    /// Limit for connecting and for each network read or write.
    pub timeout: Duration,
    /// Largest PDU petal accepts from the peer.
    pub max_pdu_length: u32,
}

/// Why a call to another node failed; [`ScuError::is_transient`] says whether a retry
/// may succeed.
#[derive(Debug, thiserror::Error)]
pub enum ScuError {
    #[error("connecting to {node} failed: {source}")]
    Connect { node: String, source: dicom_ul::association::Error },
    #[error("{node} rejected the association: {detail}")]
    Rejected { node: String, detail: String, transient: bool },
    #[error("{node} accepted no presentation context for SOP class {sop_class} in transfer syntax {transfer_syntax}")]
    NoContext { node: String, sop_class: String, transfer_syntax: String },
    #[error("talking to {node} failed: {source}")]
    Message { node: String, source: MessageError },
    #[error("{node} aborted the association")]
    Aborted { node: String },
    #[error("{node} answered with a message that is not the response: {detail}")]
    UnexpectedAnswer { node: String, detail: &'static str },
}

impl ScuError {
    /// Connection refused, timeouts, aborted associations and transient rejections may
    /// succeed later; anything the peer decided (a permanent rejection, no context) will not.
    pub fn is_transient(&self) -> bool {
        match self {
            ScuError::Connect { .. } | ScuError::Aborted { .. } | ScuError::Message { .. } => true,
            ScuError::Rejected { transient, .. } => *transient,
            ScuError::NoContext { .. } | ScuError::UnexpectedAnswer { .. } => false,
        }
    }
}

/// The peer's answer to a C-STORE.
#[derive(Debug, Clone)]
pub struct StoreAnswer {
    pub status: u16,
    pub error_comment: Option<String>,
}

impl PeerNode {
    fn name(&self) -> String {
        format!("{}@{}:{}", self.ae_title, self.host, self.port)
    }

    fn options(&self) -> ClientAssociationOptions<'static> {
        ClientAssociationOptions::new()
            .calling_ae_title(self.calling_ae_title.clone())
            .called_ae_title(self.ae_title.clone())
            .max_pdu_length(self.max_pdu_length)
            .connection_timeout(self.timeout)
            .read_timeout(self.timeout)
            .write_timeout(self.timeout)
    }

    /// Opens an association proposing `options`' contexts; `wanted` names them in the error
    /// when the peer accepts none.
    async fn associate(
        &self,
        options: ClientAssociationOptions<'static>,
        wanted: (&str, &str),
    ) -> Result<dicom_ul::association::AsyncClientAssociation<tokio::net::TcpStream>, ScuError> {
        let address = format!("{}:{}", self.host, self.port);
        options.establish_async(address).await.map_err(|source| match source {
            dicom_ul::association::Error::NoAcceptedPresentationContexts { .. } => self.no_context(wanted.0, wanted.1),
            dicom_ul::association::Error::Rejected { association_rj, .. } => ScuError::Rejected {
                node: self.name(),
                detail: association_rj.source.to_string(),
                transient: matches!(association_rj.result, dicom_ul::pdu::AssociationRJResult::Transient),
            },
            source => ScuError::Connect { node: self.name(), source },
        })
    }

    /// C-ECHO: the status the node answers Verification with.
    pub async fn echo(&self) -> Result<u16, ScuError> {
        let mut association = self
            .associate(self.options().with_abstract_syntax(VERIFICATION), (VERIFICATION, IMPLICIT_VR_LITTLE_ENDIAN))
            .await?;
        let context = accepted_context(association.presentation_contexts(), VERIFICATION, None)
            .ok_or_else(|| self.no_context(VERIFICATION, IMPLICIT_VR_LITTLE_ENDIAN))?;
        let answer = self.exchange(&mut association, context.0, &Command::echo_request(1), None).await;
        let _ = association.release().await;
        Ok(answer?.status)
    }

    /// C-STORE of one data set, as identified and encoded by `identity`.
    pub async fn store(&self, identity: &DataSetIdentity, data_set: &[u8]) -> Result<StoreAnswer, ScuError> {
        let own = syntaxes::trim(&identity.transfer_syntax_uid).to_owned();
        let options = self.options().with_presentation_context(identity.sop_class_uid.clone(), vec![own.clone()]);
        let mut association = self.associate(options, (&identity.sop_class_uid, &own)).await?;
        let Some((context, _)) =
            accepted_context(association.presentation_contexts(), &identity.sop_class_uid, Some(&own))
        else {
            let _ = association.release().await;
            return Err(self.no_context(&identity.sop_class_uid, &own));
        };
        let request = Command::store_request(1, &identity.sop_class_uid, &identity.sop_instance_uid);
        let answer = self.exchange(&mut association, context, &request, Some(data_set)).await;
        let _ = association.release().await;
        answer
    }

    async fn exchange(
        &self,
        association: &mut dicom_ul::association::AsyncClientAssociation<tokio::net::TcpStream>,
        context: u8,
        request: &Command,
        data_set: Option<&[u8]>,
    ) -> Result<StoreAnswer, ScuError> {
        let failed = |source| ScuError::Message { node: self.name(), source };
        message::send(association, context, request, data_set).await.map_err(failed)?;
        match message::receive(association, 1 << 20).await.map_err(failed)? {
            Incoming::Message(answer) => {
                let expected = match request.field {
                    CommandField::EchoRequest => CommandField::EchoResponse,
                    _ => CommandField::StoreResponse,
                };
                if answer.command.field != expected || answer.command.responding_to != request.message_id {
                    return Err(ScuError::UnexpectedAnswer {
                        node: self.name(),
                        detail: "a response to another request",
                    });
                }
                Ok(StoreAnswer {
                    status: answer.command.status.unwrap_or(status::PROCESSING_FAILURE),
                    error_comment: answer.command.error_comment,
                })
            }
            Incoming::Aborted => Err(ScuError::Aborted { node: self.name() }),
            Incoming::ReleaseRequested => {
                Err(ScuError::UnexpectedAnswer { node: self.name(), detail: "a release request instead of a response" })
            }
        }
    }

    /// Opens one association for C-STOREs of these (SOP class, transfer syntax) pairs.
    pub async fn open_store_session(&self, wanted: &[(String, String)]) -> Result<StoreSession, ScuError> {
        let mut options = self.options();
        for (sop_class, transfer_syntax) in wanted {
            let own = syntaxes::trim(transfer_syntax).to_owned();
            let mut proposed = vec![own.clone()];
            if own != EXPLICIT_VR_LITTLE_ENDIAN {
                proposed.push(EXPLICIT_VR_LITTLE_ENDIAN.to_owned());
            }
            options = options.with_presentation_context(sop_class.clone(), proposed);
        }
        let first = wanted.first().map(|(c, t)| (c.as_str(), t.as_str())).unwrap_or((VERIFICATION, ""));
        let association = self.associate(options, first).await?;
        Ok(StoreSession { peer: self.clone(), association, next_message_id: 1 })
    }

    fn no_context(&self, sop_class: &str, transfer_syntax: &str) -> ScuError {
        ScuError::NoContext {
            node: self.name(),
            sop_class: sop_class.to_owned(),
            transfer_syntax: transfer_syntax.to_owned(),
        }
    }
}

/// An association open for C-STOREs, from [`PeerNode::open_store_session`].
pub struct StoreSession {
    peer: PeerNode,
    association: dicom_ul::association::AsyncClientAssociation<tokio::net::TcpStream>,
    next_message_id: u16,
}

impl StoreSession {
    /// The peer, as errors name it.
    pub fn node(&self) -> String {
        self.peer.name()
    }

    /// The accepted context for `sop_class`, in `stored` if the peer took it, else in
    /// explicit VR little endian: its id and transfer syntax.
    pub fn context_for(&self, sop_class: &str, stored: &str) -> Option<(u8, String)> {
        let contexts = self.association.presentation_contexts();
        accepted_context(contexts, sop_class, Some(syntaxes::trim(stored)))
            .or_else(|| accepted_context(contexts, sop_class, Some(EXPLICIT_VR_LITTLE_ENDIAN)))
    }

    /// One C-STORE on the accepted context `context`.
    pub async fn store(
        &mut self,
        context: u8,
        identity: &DataSetIdentity,
        data_set: &[u8],
    ) -> Result<StoreAnswer, ScuError> {
        let request = Command::store_request(self.next_message_id, &identity.sop_class_uid, &identity.sop_instance_uid);
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        self.peer.exchange(&mut self.association, context, &request, Some(data_set)).await
    }

    /// Releases the association (an orderly end; a failure to release is only logged).
    pub async fn release(self) {
        if let Err(err) = self.association.release().await {
            tracing::debug!(error = %err, "releasing a C-STORE association failed");
        }
    }
}

/// The accepted context for `abstract_syntax`; with `transfer_syntax` given, only one in
/// that syntax (a data set is never converted on the way out).
fn accepted_context(
    contexts: &[dicom_ul::pdu::PresentationContextNegotiated],
    abstract_syntax: &str,
    transfer_syntax: Option<&str>,
) -> Option<(u8, String)> {
    contexts
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .filter(|pc| syntaxes::trim(&pc.abstract_syntax) == syntaxes::trim(abstract_syntax))
        .find(|pc| transfer_syntax.is_none_or(|ts| syntaxes::trim(&pc.transfer_syntax) == ts))
        .map(|pc| (pc.id, syntaxes::trim(&pc.transfer_syntax).to_owned()))
}
