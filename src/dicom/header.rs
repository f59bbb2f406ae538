//! Reading a stored instance's header: the data set without decoding its pixels, and text
//! attributes with DICOM's NUL/space padding removed. Shared by everything that reads tags.

use dicom_core::Tag;
use dicom_object::{InMemDicomObject, OpenFileOptions};

/// The bytes from the "DICM" magic on (the 128-byte preamble skipped when present).
pub fn strip_preamble(bytes: &[u8]) -> &[u8] {
    if bytes.len() >= 132 && &bytes[128..132] == b"DICM" { &bytes[128..] } else { bytes }
}

/// The data set of a Part 10 file (pixel data kept as stored, not decoded).
pub fn read_dataset(part10: &[u8]) -> Result<InMemDicomObject, dicom_object::ReadError> {
    Ok(OpenFileOptions::new().from_reader(strip_preamble(part10))?.into_inner())
}

/// A text attribute without padding; `None` when absent or empty.
pub fn text(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = object.get(tag)?.to_str().ok()?;
    let value = value.trim_matches(['\0', ' ']);
    (!value.is_empty()).then(|| value.to_owned())
}
