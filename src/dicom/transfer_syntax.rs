//! Transfer syntaxes petal knows by name, and re-encoding a stored instance between the
//! uncompressed ones, for DICOMweb clients that want explicit VR little endian (PS3.18's default) from an instance that a
//! scanner sent by DIMSE in implicit VR, big endian or deflated.
//!
//! Only the encoding changes: every element keeps its value, and pixel data its samples.
//! Compressed syntaxes (RLE, JPEG…) are never transcoded: they are served as stored.

use bytes::Bytes;
use dicom_object::OpenFileOptions;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::InstanceError;
use super::header::strip_preamble;

/// Implicit VR little endian.
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Explicit VR little endian: what PS3.18 serves when the client names no syntax.
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
/// Deflated explicit VR little endian.
pub const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";
/// Explicit VR big endian (retired).
pub const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
/// RLE lossless, which petal's pixel decoder reads.
pub const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// The syntaxes an instance can be re-encoded between.
const UNCOMPRESSED: [&str; 4] =
    [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN];

/// Whether an instance stored in `from` can be served in `to`.
pub fn can_transcode(from: &str, to: &str) -> bool {
    from == to || (UNCOMPRESSED.contains(&from) && UNCOMPRESSED.contains(&to))
}

/// `file` (a Part 10 instance) re-encoded in transfer syntax `to`; unchanged when it is
/// already in it.
///
/// ```
/// use petal::dicom::synthetic::SeriesSpec;
/// use petal::dicom::transfer_syntax::{transcode, IMPLICIT_VR_LITTLE_ENDIAN};
/// let explicit = SeriesSpec::new(1).instance(0).unwrap();
/// let implicit = transcode(explicit.clone().into(), IMPLICIT_VR_LITTLE_ENDIAN).unwrap();
/// let object = dicom_object::OpenFileOptions::new().from_reader(&implicit[128..]).unwrap();
/// assert_eq!(object.meta().transfer_syntax(), IMPLICIT_VR_LITTLE_ENDIAN);
/// ```
pub fn transcode(file: Bytes, to: &str) -> Result<Bytes, InstanceError> {
    let mut object =
        OpenFileOptions::new().from_reader(strip_preamble(&file)).map_err(|e| InstanceError::undecodable("", e))?;
    let from = object.meta().transfer_syntax().to_owned();
    if from == to {
        return Ok(file);
    }
    if !can_transcode(&from, to) {
        return Err(InstanceError::Unreadable(format!(
            "an instance in transfer syntax {from} cannot be re-encoded as {to}: only uncompressed syntaxes are"
        )));
    }
    let target = TransferSyntaxRegistry.get(to).ok_or_else(|| {
        InstanceError::Unreadable(format!("transfer syntax {to} is not known to petal's DICOM library"))
    })?;
    object.meta_mut().set_transfer_syntax(target);
    let mut out = Vec::with_capacity(file.len() + 256);
    object.write_all(&mut out).map_err(|e| InstanceError::undecodable("re-encoding the instance: ", e))?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::synthetic::SeriesSpec;

    #[test]
    fn every_uncompressed_syntax_round_trips_to_explicit_little_endian() {
        let original = Bytes::from(SeriesSpec::new(1).instance(0).expect("instance"));
        for syntax in UNCOMPRESSED {
            let there = transcode(original.clone(), syntax).expect("encode");
            let back = transcode(there, EXPLICIT_VR_LITTLE_ENDIAN).expect("decode");
            let a = OpenFileOptions::new().from_reader(strip_preamble(&original)).expect("open original");
            let b = OpenFileOptions::new().from_reader(strip_preamble(&back)).expect("open round trip");
            let pixels = |o: &dicom_object::DefaultDicomObject| {
                o.element(dicom_dictionary_std::tags::PIXEL_DATA).expect("pixels").to_bytes().expect("bytes").to_vec()
            };
            assert_eq!(pixels(&a), pixels(&b), "pixel samples survive {syntax}");
            assert_eq!(
                a.element(dicom_dictionary_std::tags::PATIENT_ID).expect("id").to_str().expect("text"),
                b.element(dicom_dictionary_std::tags::PATIENT_ID).expect("id").to_str().expect("text"),
            );
        }
    }

    #[test]
    fn compressed_syntaxes_are_not_transcoded() {
        assert!(!can_transcode(RLE_LOSSLESS, EXPLICIT_VR_LITTLE_ENDIAN));
        assert!(can_transcode(RLE_LOSSLESS, RLE_LOSSLESS));
        assert!(can_transcode(IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN));
    }
}
