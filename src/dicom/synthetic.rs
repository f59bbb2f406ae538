//! Synthetic PET series: small, valid PET Image Storage instances with fresh UIDs, for
//! tests and benchmarks. (Realistic phantoms and reconstructions come from the simulator.)
//!
//! ```
//! use petal::dicom::synthetic::SeriesSpec;
//! let series = SeriesSpec::new(3);
//! let first = series.instance(0).unwrap();
//! assert_eq!(&first[128..132], b"DICM");
//! ```

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// A synthetic PET series: UIDs, patient and size.
#[derive(Debug, Clone)]
pub struct SeriesSpec {
    pub study_uid: String,
    pub series_uid: String,
    pub patient_id: String,
    pub slices: usize,
    pub rows: u16,
    pub columns: u16,
    pub sop_class_uid: String,
    /// Added to every pixel, to make a copy with different bytes.
    pub pixel_offset: u16,
}

impl SeriesSpec {
    /// A 16×16 series of `slices` slices with fresh UIDs.
    pub fn new(slices: usize) -> Self {
        let root = format!("2.25.{}", uuid::Uuid::new_v4().as_u128());
        SeriesSpec {
            study_uid: format!("{root}.1"),
            series_uid: format!("{root}.2"),
            patient_id: "PET-TEST-1".into(),
            slices,
            rows: 16,
            columns: 16,
            sop_class_uid: uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE.to_owned(),
            pixel_offset: 0,
        }
    }

    pub fn sop_instance_uid(&self, index: usize) -> String {
        format!("{}.{}", self.series_uid, index + 1)
    }

    /// The data set of slice `index`, before it is written as a file.
    pub fn dataset(&self, index: usize) -> InMemDicomObject {
        let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
        let pixels: Vec<u16> = (0..usize::from(self.rows) * usize::from(self.columns))
            .map(|i| (i as u16).wrapping_mul(7).wrapping_add(index as u16 * 13).wrapping_add(self.pixel_offset))
            .collect();
        InMemDicomObject::from_element_iter([
            text(tags::SOP_CLASS_UID, VR::UI, &self.sop_class_uid),
            text(tags::SOP_INSTANCE_UID, VR::UI, &self.sop_instance_uid(index)),
            text(tags::STUDY_DATE, VR::DA, "20260105"),
            text(tags::STUDY_TIME, VR::TM, "101500"),
            text(tags::ACCESSION_NUMBER, VR::SH, "ACC-1"),
            text(tags::MODALITY, VR::CS, if self.sop_class_uid.ends_with(".128") { "PT" } else { "CT" }),
            text(tags::SERIES_DESCRIPTION, VR::LO, "PET WB"),
            text(tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
            text(tags::PATIENT_ID, VR::LO, &self.patient_id),
            text(tags::ISSUER_OF_PATIENT_ID, VR::LO, "HOSP-A"),
            text(tags::PATIENT_SEX, VR::CS, "F"),
            text(tags::STUDY_INSTANCE_UID, VR::UI, &self.study_uid),
            text(tags::SERIES_INSTANCE_UID, VR::UI, &self.series_uid),
            text(tags::STUDY_ID, VR::SH, "1"),
            text(tags::SERIES_NUMBER, VR::IS, "3"),
            text(tags::INSTANCE_NUMBER, VR::IS, &(index + 1).to_string()),
            text(tags::IMAGE_POSITION_PATIENT, VR::DS, &format!("-100\\-100\\{}", index as f64 * 3.0)),
            text(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0"),
            text(tags::FRAME_OF_REFERENCE_UID, VR::UI, &format!("{}.9", self.study_uid)),
            text(tags::SLICE_THICKNESS, VR::DS, "3"),
            text(tags::PIXEL_SPACING, VR::DS, "4\\4"),
            DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1_u16)),
            text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
            DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(self.rows)),
            DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(self.columns)),
            DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16_u16)),
            DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(16_u16)),
            DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15_u16)),
            DataElement::new(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0_u16)),
            text(tags::RESCALE_INTERCEPT, VR::DS, "0"),
            text(tags::RESCALE_SLOPE, VR::DS, "1.5"),
            text(tags::UNITS, VR::CS, "BQML"),
            DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())),
        ])
    }

    /// Slice `index` as a DICOM Part 10 file (explicit VR little endian).
    pub fn instance(&self, index: usize) -> Result<Vec<u8>, SyntheticError> {
        write_file(self.dataset(index), &self.sop_class_uid, &self.sop_instance_uid(index))
    }

    /// Every slice, in order.
    pub fn instances(&self) -> Result<Vec<Vec<u8>>, SyntheticError> {
        (0..self.slices).map(|i| self.instance(i)).collect()
    }
}

/// Why a synthetic instance could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    #[error("building the file meta group: {0}")]
    Meta(Box<dicom_object::WithMetaError>),
    #[error("writing the instance: {0}")]
    Write(Box<dicom_object::WriteError>),
}

/// Writes a data set as a Part 10 file with a 128-byte preamble.
pub fn write_file(
    dataset: InMemDicomObject,
    sop_class_uid: &str,
    sop_instance_uid: &str,
) -> Result<Vec<u8>, SyntheticError> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class_uid)
        .media_storage_sop_instance_uid(sop_instance_uid)
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let file = dataset.with_meta(meta).map_err(|e| SyntheticError::Meta(Box::new(e)))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).map_err(|e| SyntheticError::Write(Box::new(e)))?;
    Ok(bytes)
}
