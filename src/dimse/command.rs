//! DIMSE command sets (PS3.7 §9.3 and §E): the group-0000 elements that head every DIMSE
//! message, always encoded in implicit VR little endian whatever the data set's transfer
//! syntax.
//!
//! petal speaks two services: Verification (C-ECHO) and Storage (C-STORE), as provider and,
//! for C-STORE, as user. A command set is a handful of tagged values, so it is read and
//! written here directly rather than through a general DICOM object.
//!
//! ```
//! use petal::dimse::command::{Command, CommandField};
//! let request = Command::store_request(7, "1.2.840.10008.5.1.4.1.1.128", "1.2.3.4");
//! let bytes = request.encode();
//! let read = Command::parse(&bytes).unwrap();
//! assert_eq!(read.field, CommandField::StoreRequest);
//! assert_eq!(read.message_id, Some(7));
//! assert_eq!(read.affected_sop_instance_uid.as_deref(), Some("1.2.3.4"));
//! assert!(read.has_data_set());
//! ```

/// What a DIMSE message is (CommandField, 0000,0100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandField {
    StoreRequest,
    StoreResponse,
    EchoRequest,
    EchoResponse,
    /// Any other service (C-FIND, C-MOVE, N-…): petal does not provide it.
    Other(u16),
}

impl CommandField {
    fn code(self) -> u16 {
        match self {
            CommandField::StoreRequest => 0x0001,
            CommandField::StoreResponse => 0x8001,
            CommandField::EchoRequest => 0x0030,
            CommandField::EchoResponse => 0x8030,
            CommandField::Other(code) => code,
        }
    }

    fn from_code(code: u16) -> Self {
        match code {
            0x0001 => CommandField::StoreRequest,
            0x8001 => CommandField::StoreResponse,
            0x0030 => CommandField::EchoRequest,
            0x8030 => CommandField::EchoResponse,
            other => CommandField::Other(other),
        }
    }

    /// Whether this is a response (the high bit of the code).
    pub fn is_response(self) -> bool {
        self.code() & 0x8000 != 0
    }
}

/// DIMSE status codes petal sends or must understand (PS3.4 Annex B and PS3.7 Annex C).
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    /// Warning: the instance was stored before with other content; the first copy is kept.
    pub const ELEMENTS_DISCARDED: u16 = 0xB006;
    /// Refused: out of resources (disk floor reached, storage or database unavailable). A
    /// sender retries later.
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: the data set does not match the SOP class (required attributes missing or
    /// invalid, or identity different from the command's).
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// Error: cannot understand (not a readable data set).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Failure: processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// Failure: the command (service) is not recognised.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;

    /// How a status reads in logs and errors.
    pub fn describe(code: u16) -> &'static str {
        match code {
            SUCCESS => "success",
            0xA700..=0xA7FF => "refused: out of resources",
            0xA900..=0xA9FF => "error: data set does not match SOP class",
            0xC000..=0xCFFF => "error: cannot understand",
            0xB000..=0xBFFF => "warning",
            0x0110 => "failure: processing failure",
            0x0122 => "failure: SOP class not supported",
            0x0211 => "failure: unrecognized operation",
            _ => "failure",
        }
    }

    /// Whether the instance counts as stored by the receiver (success or a warning).
    pub fn is_stored(code: u16) -> bool {
        code == SUCCESS || (0xB000..=0xBFFF).contains(&code) || code == 0x0107 || code == 0x0116
    }
}

/// CommandDataSetType (0000,0800) value meaning "no data set follows".
const NO_DATA_SET: u16 = 0x0101;
/// Priority (0000,0700): medium.
const PRIORITY_MEDIUM: u16 = 0x0000;

mod tag {
    pub const GROUP_LENGTH: u16 = 0x0000;
    pub const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
    pub const COMMAND_FIELD: u16 = 0x0100;
    pub const MESSAGE_ID: u16 = 0x0110;
    pub const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
    pub const PRIORITY: u16 = 0x0700;
    pub const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
    pub const STATUS: u16 = 0x0900;
    pub const ERROR_COMMENT: u16 = 0x0902;
    pub const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;
}

/// One command set: the fields of C-ECHO and C-STORE requests and responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub field: CommandField,
    pub affected_sop_class_uid: Option<String>,
    pub affected_sop_instance_uid: Option<String>,
    /// Set on requests.
    pub message_id: Option<u16>,
    /// Set on responses: the request's MessageID.
    pub responding_to: Option<u16>,
    /// Set on responses.
    pub status: Option<u16>,
    /// Why a response is not success, for the sender's log (64 characters at most).
    pub error_comment: Option<String>,
    /// CommandDataSetType: anything but 0x0101 means a data set follows.
    pub data_set_type: u16,
}

/// Why a command set could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("the command set is truncated at byte {0}")]
    Truncated(usize),
    #[error("the command set has no CommandField (0000,0100)")]
    NoCommandField,
    #[error("the command set holds element ({group:04X},{element:04X}), outside group 0000")]
    NotCommandGroup { group: u16, element: u16 },
}

impl Command {
    /// A C-ECHO request.
    pub fn echo_request(message_id: u16) -> Self {
        Command {
            field: CommandField::EchoRequest,
            affected_sop_class_uid: Some(super::syntaxes::VERIFICATION.to_owned()),
            affected_sop_instance_uid: None,
            message_id: Some(message_id),
            responding_to: None,
            status: None,
            error_comment: None,
            data_set_type: NO_DATA_SET,
        }
    }

    /// A C-STORE request for one instance; its data set follows.
    pub fn store_request(message_id: u16, sop_class_uid: &str, sop_instance_uid: &str) -> Self {
        Command {
            field: CommandField::StoreRequest,
            affected_sop_class_uid: Some(sop_class_uid.to_owned()),
            affected_sop_instance_uid: Some(sop_instance_uid.to_owned()),
            message_id: Some(message_id),
            responding_to: None,
            status: None,
            error_comment: None,
            data_set_type: 0x0000,
        }
    }

    /// The response to `request` with `status` (no data set follows).
    pub fn response_to(request: &Command, status: u16, error_comment: Option<&str>) -> Self {
        let field = match request.field {
            CommandField::StoreRequest => CommandField::StoreResponse,
            CommandField::EchoRequest => CommandField::EchoResponse,
            other => CommandField::Other(other.code() | 0x8000),
        };
        Command {
            field,
            affected_sop_class_uid: request.affected_sop_class_uid.clone(),
            affected_sop_instance_uid: request.affected_sop_instance_uid.clone(),
            message_id: None,
            responding_to: request.message_id,
            status: Some(status),
            error_comment: error_comment.map(short_comment),
            data_set_type: NO_DATA_SET,
        }
    }

    /// Whether a data set follows this command.
    pub fn has_data_set(&self) -> bool {
        self.data_set_type != NO_DATA_SET
    }

    /// The command set in implicit VR little endian, with its group length first.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        if let Some(uid) = &self.affected_sop_class_uid {
            put_text(&mut body, tag::AFFECTED_SOP_CLASS_UID, uid, 0);
        }
        put_u16(&mut body, tag::COMMAND_FIELD, self.field.code());
        if let Some(id) = self.message_id {
            put_u16(&mut body, tag::MESSAGE_ID, id);
        }
        if let Some(id) = self.responding_to {
            put_u16(&mut body, tag::MESSAGE_ID_BEING_RESPONDED_TO, id);
        }
        if self.field == CommandField::StoreRequest {
            put_u16(&mut body, tag::PRIORITY, PRIORITY_MEDIUM);
        }
        put_u16(&mut body, tag::COMMAND_DATA_SET_TYPE, self.data_set_type);
        if let Some(status) = self.status {
            put_u16(&mut body, tag::STATUS, status);
        }
        if let Some(comment) = &self.error_comment {
            put_text(&mut body, tag::ERROR_COMMENT, comment, b' ');
        }
        if let Some(uid) = &self.affected_sop_instance_uid {
            put_text(&mut body, tag::AFFECTED_SOP_INSTANCE_UID, uid, 0);
        }
        let mut out = Vec::with_capacity(body.len() + 12);
        put_element(&mut out, tag::GROUP_LENGTH, &(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Reads a command set; unknown group-0000 elements are skipped.
    pub fn parse(bytes: &[u8]) -> Result<Self, CommandError> {
        let mut command = Command {
            field: CommandField::Other(0),
            affected_sop_class_uid: None,
            affected_sop_instance_uid: None,
            message_id: None,
            responding_to: None,
            status: None,
            error_comment: None,
            data_set_type: NO_DATA_SET,
        };
        let mut seen_field = false;
        let mut at = 0usize;
        while at < bytes.len() {
            let header = bytes.get(at..at + 8).ok_or(CommandError::Truncated(at))?;
            let group = u16::from_le_bytes([header[0], header[1]]);
            let element = u16::from_le_bytes([header[2], header[3]]);
            let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if group != 0x0000 {
                return Err(CommandError::NotCommandGroup { group, element });
            }
            let value = bytes.get(at + 8..at + 8 + length).ok_or(CommandError::Truncated(at))?;
            let number = || (value.len() >= 2).then(|| u16::from_le_bytes([value[0], value[1]]));
            match element {
                tag::AFFECTED_SOP_CLASS_UID => command.affected_sop_class_uid = Some(text(value)),
                tag::AFFECTED_SOP_INSTANCE_UID => command.affected_sop_instance_uid = Some(text(value)),
                tag::COMMAND_FIELD => {
                    command.field = CommandField::from_code(number().ok_or(CommandError::Truncated(at))?);
                    seen_field = true;
                }
                tag::MESSAGE_ID => command.message_id = number(),
                tag::MESSAGE_ID_BEING_RESPONDED_TO => command.responding_to = number(),
                tag::COMMAND_DATA_SET_TYPE => command.data_set_type = number().unwrap_or(NO_DATA_SET),
                tag::STATUS => command.status = number(),
                tag::ERROR_COMMENT => command.error_comment = Some(text(value)),
                _ => {}
            }
            at += 8 + length;
        }
        if !seen_field {
            return Err(CommandError::NoCommandField);
        }
        Ok(command)
    }
}

/// ErrorComment is LO: at most 64 characters, no backslash or control characters.
fn short_comment(comment: &str) -> String {
    comment.chars().map(|c| if c.is_control() || c == '\\' { ' ' } else { c }).take(64).collect()
}

fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).to_owned()
}

fn put_element(out: &mut Vec<u8>, element: u16, value: &[u8]) {
    out.extend_from_slice(&0x0000u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

fn put_u16(out: &mut Vec<u8>, element: u16, value: u16) {
    put_element(out, element, &value.to_le_bytes());
}

/// A text value padded to even length (UIDs with NUL, other strings with a space).
fn put_text(out: &mut Vec<u8>, element: u16, value: &str, pad: u8) {
    let mut bytes = value.as_bytes().to_vec();
    if bytes.len() % 2 == 1 {
        bytes.push(pad);
    }
    put_element(out, element, &bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_response_answers_its_request_and_round_trips() {
        let request = Command::store_request(41, "1.2.840.10008.5.1.4.1.1.128", "1.2.3");
        let response = Command::response_to(&request, status::OUT_OF_RESOURCES, Some("disk\\full"));
        let read = Command::parse(&response.encode()).expect("parse");
        assert_eq!(read.field, CommandField::StoreResponse);
        assert_eq!(read.responding_to, Some(41));
        assert_eq!(read.status, Some(0xA700));
        assert_eq!(read.error_comment.as_deref(), Some("disk full"));
        assert_eq!(read.affected_sop_instance_uid.as_deref(), Some("1.2.3"));
        assert!(!read.has_data_set());
    }

    #[test]
    fn the_group_length_counts_the_elements_after_it() {
        let bytes = Command::echo_request(1).encode();
        let length = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        assert_eq!(length, bytes.len() - 12);
        assert_eq!(length % 2, 0);
    }

    #[test]
    fn truncated_and_foreign_command_sets_are_refused() {
        let bytes = Command::echo_request(1).encode();
        assert!(matches!(Command::parse(&bytes[..bytes.len() - 1]), Err(CommandError::Truncated(_))));
        let foreign = [0x08, 0x00, 0x16, 0x00, 0x00, 0x00, 0x00, 0x00];
        assert!(matches!(Command::parse(&foreign), Err(CommandError::NotCommandGroup { group: 8, .. })));
        assert_eq!(Command::parse(&[]), Err(CommandError::NoCommandField));
    }

    #[test]
    fn stored_means_success_or_warning() {
        assert!(status::is_stored(status::SUCCESS));
        assert!(status::is_stored(status::ELEMENTS_DISCARDED));
        assert!(!status::is_stored(status::OUT_OF_RESOURCES));
        assert!(!status::is_stored(status::CANNOT_UNDERSTAND));
    }
}
