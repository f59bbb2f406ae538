//! The abstract and transfer syntaxes petal negotiates (PS3.4 Annex A and B, PS3.5 §10).

/// Verification SOP class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

pub use crate::dicom::transfer_syntax::{
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
    RLE_LOSSLESS,
};

/// The transfer syntaxes petal accepts for storage, in the order it prefers when a sender
/// proposes several in one context (the sender's order decides between them otherwise).
pub const ACCEPTED_TRANSFER_SYNTAXES: [&str; 5] = [
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    RLE_LOSSLESS,
];

/// A UID as received on the wire, without its padding.
pub fn trim(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}
