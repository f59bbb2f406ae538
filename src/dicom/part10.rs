//! Normalising received instances to complete DICOM Part 10 files (PS3.10 §7.1):
//! 128-byte preamble, `DICM`, then a file meta group that starts with its group length.
//!
//! Some senders omit parts of that header: dicomweb-client posts the meta group without
//! preamble, magic or group length. petal stores what a later reader can open, so such
//! an instance gets the missing header bytes; the data set itself is never touched, and a
//! complete file passes through unchanged.

use bytes::{BufMut, Bytes, BytesMut};

use super::InstanceError;

const PREAMBLE: usize = 128;
const MAGIC: &[u8; 4] = b"DICM";

/// Explicit VR little endian VRs whose length field is 4 bytes (after 2 reserved bytes).
const LONG_VRS: [&[u8; 2]; 13] =
    [b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"];

/// Returns `bytes` as a complete Part 10 file.
///
/// ```
/// # use petal::dicom::part10::normalize;
/// let complete = [vec![0u8; 128], b"DICM".to_vec(), vec![2, 0, 0, 0, b'U', b'L', 4, 0, 0, 0, 0, 0]].concat();
/// assert_eq!(normalize(complete.clone().into()).unwrap().as_ref(), complete.as_slice());
/// ```
pub fn normalize(bytes: Bytes) -> Result<Bytes, InstanceError> {
    if bytes.len() >= PREAMBLE + 4 && &bytes[PREAMBLE..PREAMBLE + 4] == MAGIC {
        return Ok(bytes);
    }
    let meta_start = if bytes.starts_with(MAGIC) { 4 } else { 0 };
    let meta = &bytes[meta_start..];
    if !starts_with_meta_element(meta) {
        return Err(InstanceError::Unreadable(
            "no DICOM file meta information (a Part 10 file, as PS3.18 requires, starts with it)".to_owned(),
        ));
    }
    let starts_with_group_length = meta[..4] == [0x02, 0x00, 0x00, 0x00];
    let mut out = BytesMut::with_capacity(bytes.len() + PREAMBLE + 16);
    out.put_bytes(0, PREAMBLE);
    out.put_slice(MAGIC);
    if !starts_with_group_length {
        let length = meta_group_length(meta)?;
        out.put_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        out.put_u32_le(length);
    }
    out.put_slice(meta);
    Ok(out.freeze())
}

/// What a file meta group says of the data set after it: the identity and encoding that a
/// DIMSE command and presentation context carry on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSetIdentity {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax_uid: String,
}

/// A Part 10 file around a data set received over the network (C-STORE): preamble, `DICM`
/// and a file meta group naming `identity` and the sending node; the data set's bytes
/// follow untouched, in the transfer syntax they came in (deflated ones stay deflated, as
/// PS3.10 stores them).
///
/// ```
/// use petal::dicom::part10::{DataSetIdentity, from_data_set, split};
/// let identity = DataSetIdentity {
///     sop_class_uid: "1.2.840.10008.5.1.4.1.1.128".into(),
///     sop_instance_uid: "1.2.3.4".into(),
///     transfer_syntax_uid: "1.2.840.10008.1.2".into(),
/// };
/// let data_set = b"\x08\x00\x18\x00\x08\x00\x00\x001.2.3.4\0";
/// let file = from_data_set(&identity, data_set, Some("SCANNER")).unwrap();
/// let (read, rest) = split(&file).unwrap();
/// assert_eq!(read, identity);
/// assert_eq!(rest, data_set);
/// ```
pub fn from_data_set(
    identity: &DataSetIdentity,
    data_set: &[u8],
    source_ae_title: Option<&str>,
) -> Result<Bytes, InstanceError> {
    let mut builder = dicom_object::FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(identity.sop_class_uid.as_str())
        .media_storage_sop_instance_uid(identity.sop_instance_uid.as_str())
        .transfer_syntax(identity.transfer_syntax_uid.as_str());
    if let Some(ae) = source_ae_title {
        builder = builder.source_application_entity_title(ae);
    }
    let meta = builder.build().map_err(|e| InstanceError::undecodable("building the file meta group: ", e))?;
    let mut out = vec![0u8; PREAMBLE];
    out.extend_from_slice(MAGIC);
    meta.write(&mut out).map_err(|e| InstanceError::undecodable("writing the file meta group: ", e))?;
    out.extend_from_slice(data_set);
    Ok(Bytes::from(out))
}

/// The identity a complete Part 10 file's meta group gives, and the data set after it, as
/// a DIMSE sender needs them.
pub fn split(file: &[u8]) -> Result<(DataSetIdentity, &[u8]), InstanceError> {
    if file.len() < PREAMBLE + 4 || &file[PREAMBLE..PREAMBLE + 4] != MAGIC {
        return Err(InstanceError::Unreadable("not a Part 10 file (no `DICM` after the preamble)".to_owned()));
    }
    let meta = &file[PREAMBLE + 4..];
    let length = meta_group_length(meta)? as usize;
    let table = dicom_object::FileMetaTable::from_reader(&file[PREAMBLE..PREAMBLE + 4 + length])
        .map_err(|e| InstanceError::undecodable("the file meta group: ", e))?;
    let identity = DataSetIdentity {
        sop_class_uid: trim_uid(table.media_storage_sop_class_uid()),
        sop_instance_uid: trim_uid(table.media_storage_sop_instance_uid()),
        transfer_syntax_uid: trim_uid(table.transfer_syntax()),
    };
    Ok((identity, &meta[length..]))
}

fn trim_uid(uid: &str) -> String {
    uid.trim_end_matches(['\0', ' ']).to_owned()
}

fn starts_with_meta_element(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..2] == [0x02, 0x00] && bytes[4..6].iter().all(u8::is_ascii_uppercase)
}

/// Length in bytes of the leading run of group-0002 elements (explicit VR little endian).
fn meta_group_length(bytes: &[u8]) -> Result<u32, InstanceError> {
    let truncated = || InstanceError::Unreadable("the file meta group is truncated".to_owned());
    let mut at = 0usize;
    while bytes.len() >= at + 8 && bytes[at..at + 2] == [0x02, 0x00] {
        let vr = &bytes[at + 4..at + 6];
        let (header, length) = if LONG_VRS.iter().any(|v| v.as_slice() == vr) {
            let raw = bytes.get(at + 8..at + 12).ok_or_else(truncated)?;
            (12, u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
        } else {
            (8, usize::from(u16::from_le_bytes([bytes[at + 6], bytes[at + 7]])))
        };
        at = at.checked_add(header + length).filter(|end| *end <= bytes.len()).ok_or_else(truncated)?;
    }
    u32::try_from(at).map_err(|_| truncated())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(tag: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = vec![0x02, 0x00];
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(vr);
        if vr == b"OB" {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn a_bare_meta_group_gets_preamble_magic_and_group_length() {
        let meta = [element(0x0001, b"OB", &[0, 1]), element(0x0010, b"UI", b"1.2.840.10008.1.2.1\0")].concat();
        let dataset = b"\x08\x00\x18\x00UI\x04\x001.23".to_vec();
        let input = [meta.clone(), dataset.clone()].concat();
        let output = normalize(input.into()).expect("normalises");
        assert_eq!(&output[128..132], b"DICM");
        assert_eq!(&output[132..140], &[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        assert_eq!(u32::from_le_bytes(output[140..144].try_into().expect("4 bytes")) as usize, meta.len());
        assert_eq!(&output[144..], [meta, dataset].concat().as_slice(), "the rest is untouched");
    }

    #[test]
    fn magic_without_preamble_gets_a_preamble() {
        let input = [b"DICM".to_vec(), element(0x0000, b"UL", &[4, 0, 0, 0])].concat();
        let output = normalize(input.clone().into()).expect("normalises");
        assert_eq!(output.len(), input.len() + 128);
        assert_eq!(&output[128..], input.as_slice());
    }

    #[test]
    fn data_without_meta_is_refused() {
        assert!(normalize(Bytes::from_static(b"\x08\x00\x18\x00UI\x04\x001.23")).is_err());
        assert!(normalize(Bytes::from_static(b"hello")).is_err());
    }
}
