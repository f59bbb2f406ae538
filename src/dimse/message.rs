//! DIMSE messages over an established association (PS3.7 §6.3.1 and PS3.8 §9.3.5): a
//! command set and an optional data set, each carried in P-DATA fragments that may be cut
//! at any size the receiver's maximum PDU length allows.
//!
//! Receiving gathers the fragments of one message; sending cuts them to the peer's maximum.
//! Both work for petal as provider (C-STORE SCP) and as user (forwarding).

use dicom_ul::Pdu;
use dicom_ul::association::{Association, AsyncAssociation};
use dicom_ul::pdu::{PDataValue, PDataValueType};
use tokio::net::TcpStream;

use super::command::{Command, CommandError};

/// Bytes of a PDV item's own header inside a P-DATA-TF PDU (length, context id, flags).
const PDV_HEADER: u32 = 6;
/// Fragment size when the peer names no maximum (0 means unlimited).
const UNLIMITED_FRAGMENT: u32 = 1 << 20;

/// One whole DIMSE message.
#[derive(Debug)]
pub struct Message {
    /// The presentation context it came on: its abstract and transfer syntax.
    pub presentation_context_id: u8,
    pub command: Command,
    /// The data set, as encoded on the wire in the context's transfer syntax.
    pub data_set: Option<Vec<u8>>,
}

/// What arrived on the association.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    /// The peer asked for an orderly release (A-RELEASE-RQ).
    ReleaseRequested,
    /// The peer aborted the association (A-ABORT).
    Aborted,
}

/// Why a message could not be received or sent.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the association failed: {0}")]
    Association(#[from] dicom_ul::association::Error),
    #[error("the command set is not readable: {0}")]
    Command(#[from] CommandError),
    #[error("the peer broke the DIMSE protocol: {0}")]
    Protocol(&'static str),
    #[error("the data set is larger than the limit of {0} bytes")]
    TooLarge(u64),
}

/// Receives the next message, gathering its fragments; a data set longer than
/// `max_data_set_bytes` fails the message (the caller aborts the association).
pub async fn receive<A>(association: &mut A, max_data_set_bytes: u64) -> Result<Incoming, MessageError>
where
    A: AsyncAssociation<TcpStream> + Association + Send,
{
    let mut command_bytes = Vec::new();
    let mut command: Option<(u8, Command)> = None;
    let mut data = Vec::new();
    loop {
        let values = match AsyncAssociation::receive(association).await? {
            Pdu::PData { data } => data,
            Pdu::ReleaseRQ => return Ok(Incoming::ReleaseRequested),
            Pdu::AbortRQ { .. } => return Ok(Incoming::Aborted),
            _ => return Err(MessageError::Protocol("expected P-DATA, A-RELEASE or A-ABORT")),
        };
        for value in values {
            match (value.value_type, &command) {
                (PDataValueType::Command, None) => {
                    command_bytes.extend_from_slice(&value.data);
                    if value.is_last {
                        let parsed = Command::parse(&command_bytes)?;
                        if !parsed.has_data_set() {
                            return Ok(Incoming::Message(Message {
                                presentation_context_id: value.presentation_context_id,
                                command: parsed,
                                data_set: None,
                            }));
                        }
                        command = Some((value.presentation_context_id, parsed));
                    }
                }
                (PDataValueType::Command, Some(_)) => {
                    return Err(MessageError::Protocol("a command fragment arrived inside a data set"));
                }
                (PDataValueType::Data, None) => {
                    return Err(MessageError::Protocol("a data set fragment arrived before its command"));
                }
                (PDataValueType::Data, Some((context, _))) => {
                    if value.presentation_context_id != *context {
                        return Err(MessageError::Protocol("a data set changed presentation context"));
                    }
                    if (data.len() + value.data.len()) as u64 > max_data_set_bytes {
                        return Err(MessageError::TooLarge(max_data_set_bytes));
                    }
                    data.extend_from_slice(&value.data);
                    if value.is_last {
                        let (presentation_context_id, command) =
                            command.take().ok_or(MessageError::Protocol("a data set ended without a command"))?;
                        return Ok(Incoming::Message(Message {
                            presentation_context_id,
                            command,
                            data_set: Some(std::mem::take(&mut data)),
                        }));
                    }
                }
            }
        }
    }
}

/// Sends a command and, when given, its data set, cut to the peer's maximum PDU length.
pub async fn send<A>(
    association: &mut A,
    presentation_context_id: u8,
    command: &Command,
    data_set: Option<&[u8]>,
) -> Result<(), MessageError>
where
    A: AsyncAssociation<TcpStream> + Association + Send,
{
    let fragment = fragment_size(association.peer_max_pdu_length());
    send_fragments(association, presentation_context_id, PDataValueType::Command, &command.encode(), fragment).await?;
    if let Some(data) = data_set {
        send_fragments(association, presentation_context_id, PDataValueType::Data, data, fragment).await?;
    }
    Ok(())
}

/// The largest PDV payload a peer with this maximum PDU length accepts.
fn fragment_size(peer_max_pdu_length: u32) -> usize {
    let max = if peer_max_pdu_length == 0 { UNLIMITED_FRAGMENT } else { peer_max_pdu_length };
    max.saturating_sub(PDV_HEADER).max(2) as usize
}

async fn send_fragments<A>(
    association: &mut A,
    presentation_context_id: u8,
    value_type: PDataValueType,
    bytes: &[u8],
    fragment: usize,
) -> Result<(), MessageError>
where
    A: AsyncAssociation<TcpStream> + Association + Send,
{
    let mut chunks = bytes.chunks(fragment).peekable();
    if chunks.peek().is_none() {
        let value = PDataValue { presentation_context_id, value_type, is_last: true, data: Vec::new() };
        AsyncAssociation::send(association, &Pdu::PData { data: vec![value] }).await?;
        return Ok(());
    }
    while let Some(chunk) = chunks.next() {
        let value = PDataValue {
            presentation_context_id,
            value_type: value_type.clone(),
            is_last: chunks.peek().is_none(),
            data: chunk.to_vec(),
        };
        AsyncAssociation::send(association, &Pdu::PData { data: vec![value] }).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fragment_size;

    #[test]
    fn fragments_leave_room_for_the_pdv_header() {
        assert_eq!(fragment_size(16384), 16378);
        assert_eq!(fragment_size(0), (1 << 20) - 6);
        assert_eq!(fragment_size(4), 2);
    }
}
