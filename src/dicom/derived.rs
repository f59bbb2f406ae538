//! The derived series petal writes (docs/interoperability.md §4): each source slice copied with its
//! geometry, timing, dose and patient/study modules untouched, new UIDs, the denoised values
//! as 16-bit signed pixels with a per-slice RescaleSlope (intercept 0, Units unchanged), and
//! the derivation recorded: ImageType DERIVED\PRIMARY, DerivationDescription,
//! SourceImageSequence (purpose 121322), ReferencedSeriesSequence, and
//! ContributingEquipmentSequence whose DeviceUID is the model version's UID — which is also
//! how petal recognises its own output and never denoises it again.

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::header::text as text_of;

use super::synthetic::{SyntheticError, write_file};

pub use super::provenance::{PETAL_MANUFACTURER, is_petal_output};

/// Largest magnitude a signed 16-bit pixel holds.
const PIXEL_MAX: f32 = 32767.0;

/// What every instance of one derived series shares.
#[derive(Debug, Clone)]
pub struct Derivation {
    /// The new SeriesInstanceUID.
    pub series_uid: String,
    pub series_number: Option<i32>,
    pub series_description: String,
    /// Names the model and version, e.g. "petal 2.5D DnCNN, model version 3 (sha256 1a2b…)".
    pub derivation_description: String,
    /// The model version's DICOM UID (DeviceUID of the contributing equipment).
    pub device_uid: String,
    pub software_version: String,
    /// When the series was made, as DICOM DA and TM.
    pub date: String,
    pub time: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DerivedError {
    #[error("the source slice lacks {0}")]
    Missing(&'static str),
    #[error("the slice has {values} denoised values for {rows}×{columns} pixels")]
    Size { values: usize, rows: usize, columns: usize },
    #[error("the denoised slice holds NaN or infinity")]
    NotFinite,
    #[error(transparent)]
    Write(#[from] SyntheticError),
}

/// Pixels and slope for `values` (physical units): pixel × slope reproduces each value to
/// within half a step of the slice's largest magnitude / 32767.
pub fn quantise(values: &[f32]) -> Result<(Vec<i16>, f64), DerivedError> {
    if values.iter().any(|v| !v.is_finite()) {
        return Err(DerivedError::NotFinite);
    }
    let largest = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let slope = if largest > 0.0 { f64::from(largest) / f64::from(PIXEL_MAX) } else { 1.0 };
    // The slope is written as a decimal string (DS, 16 characters at most), so quantise with
    // the value a reader will parse back.
    let slope = format_ds(slope).parse::<f64>().unwrap_or(slope);
    let pixels = values
        .iter()
        .map(|v| (f64::from(*v) / slope).round().clamp(-f64::from(PIXEL_MAX), f64::from(PIXEL_MAX)) as i16)
        .collect();
    Ok((pixels, slope))
}

/// A decimal string of at most 16 characters (DICOM DS).
pub(crate) fn format_ds(value: f64) -> String {
    for precision in (1..=10).rev() {
        let text = format!("{value:.precision$e}");
        if text.len() <= 16 {
            return text;
        }
    }
    format!("{value:.1e}")
}

fn text(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

fn code(value: &str, designator: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        text(tags::CODE_VALUE, VR::SH, value),
        text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, designator),
        text(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

/// The derived instance of one source slice, from the source's data set (as
/// [`super::header::read_dataset`] or the volume assembly read it): `values` are the denoised
/// slice in the source's physical units (after the inverse of the network's normalisation),
/// row-major.
pub fn derive_instance(
    mut object: InMemDicomObject,
    values: &[f32],
    sop_instance_uid: &str,
    derivation: &Derivation,
) -> Result<Vec<u8>, DerivedError> {
    let read = |object: &InMemDicomObject, tag, name| text_of(object, tag).ok_or(DerivedError::Missing(name));
    let sop_class = read(&object, tags::SOP_CLASS_UID, "SOPClassUID")?;
    let source_instance = read(&object, tags::SOP_INSTANCE_UID, "SOPInstanceUID")?;
    let source_series = read(&object, tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?;
    let number = |tag, name| {
        object.get(tag).and_then(|e| e.to_int::<u32>().ok()).map(|v| v as usize).ok_or(DerivedError::Missing(name))
    };
    let (rows, columns) = (number(tags::ROWS, "Rows")?, number(tags::COLUMNS, "Columns")?);
    if values.len() != rows * columns {
        return Err(DerivedError::Size { values: values.len(), rows, columns });
    }
    let (pixels, slope) = quantise(values)?;

    // Attributes that described the source's pixel encoding, or that would be wrong on a
    // new instance, go; private tags go too (they may describe the source's pixels).
    let private: Vec<Tag> = object.iter().map(|e| e.header().tag).filter(|t| t.group() % 2 == 1).collect();
    for tag in private.into_iter().chain([
        tags::SMALLEST_IMAGE_PIXEL_VALUE,
        tags::LARGEST_IMAGE_PIXEL_VALUE,
        tags::PIXEL_PADDING_VALUE,
        tags::PIXEL_PADDING_RANGE_LIMIT,
        tags::SMALLEST_PIXEL_VALUE_IN_SERIES,
        tags::LARGEST_PIXEL_VALUE_IN_SERIES,
        tags::REFERENCED_IMAGE_SEQUENCE,
    ]) {
        object.remove_element(tag);
    }

    let image_type =
        object.get(tags::IMAGE_TYPE).and_then(|e| e.to_multi_str().ok().map(|v| v.to_vec())).unwrap_or_default();
    let mut derived_type = vec!["DERIVED".to_owned(), "PRIMARY".to_owned()];
    derived_type.extend(image_type.into_iter().skip(2));
    object.put(DataElement::new(tags::IMAGE_TYPE, VR::CS, PrimitiveValue::Strs(derived_type.into())));

    for element in [
        text(tags::SOP_INSTANCE_UID, VR::UI, sop_instance_uid),
        text(tags::SERIES_INSTANCE_UID, VR::UI, &derivation.series_uid),
        text(tags::SERIES_DESCRIPTION, VR::LO, &derivation.series_description),
        text(tags::DERIVATION_DESCRIPTION, VR::ST, &derivation.derivation_description),
        text(tags::INSTANCE_CREATION_DATE, VR::DA, &derivation.date),
        text(tags::INSTANCE_CREATION_TIME, VR::TM, &derivation.time),
        text(tags::CONTENT_DATE, VR::DA, &derivation.date),
        text(tags::CONTENT_TIME, VR::TM, &derivation.time),
        text(tags::RESCALE_INTERCEPT, VR::DS, "0"),
        text(tags::RESCALE_SLOPE, VR::DS, &format_ds(slope)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16_u16)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(16_u16)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15_u16)),
        DataElement::new(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(1_u16)),
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::I16(pixels.into())),
    ] {
        object.put(element);
    }
    if let Some(series_number) = derivation.series_number {
        object.put(text(tags::SERIES_NUMBER, VR::IS, &series_number.to_string()));
    }

    let purpose_source = code("121322", "DCM", "Source image for image processing operation");
    object.put(sequence(
        tags::SOURCE_IMAGE_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &sop_class),
            text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &source_instance),
            sequence(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE, vec![purpose_source]),
        ])],
    ));
    // Common Instance Reference: the source series and, in it, the source instance.
    let referenced_instance = InMemDicomObject::from_element_iter([
        text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &sop_class),
        text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &source_instance),
    ]);
    object.put(sequence(
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            text(tags::SERIES_INSTANCE_UID, VR::UI, &source_series),
            sequence(tags::REFERENCED_INSTANCE_SEQUENCE, vec![referenced_instance]),
        ])],
    ));
    let mut equipment = object
        .get(tags::CONTRIBUTING_EQUIPMENT_SEQUENCE)
        .and_then(|e| e.items().map(|items| items.to_vec()))
        .unwrap_or_default();
    equipment.push(InMemDicomObject::from_element_iter([
        text(tags::MANUFACTURER, VR::LO, PETAL_MANUFACTURER),
        text(tags::MANUFACTURER_MODEL_NAME, VR::LO, "petal 2.5D DnCNN denoiser"),
        text(tags::DEVICE_UID, VR::UI, &derivation.device_uid),
        text(tags::SOFTWARE_VERSIONS, VR::LO, &derivation.software_version),
        text(tags::CONTRIBUTION_DATE_TIME, VR::DT, &format!("{}{}", derivation.date, derivation.time)),
        text(tags::CONTRIBUTION_DESCRIPTION, VR::ST, &derivation.derivation_description),
        sequence(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE, vec![code("109103", "DCM", "Processing Equipment")]),
    ]));
    object.put(sequence(tags::CONTRIBUTING_EQUIPMENT_SEQUENCE, equipment));

    Ok(write_file(object, &sop_class, sop_instance_uid)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::header::read_dataset;
    use crate::dicom::pixels::Frames;
    use crate::dicom::synthetic::SeriesSpec;

    fn derivation() -> Derivation {
        Derivation {
            series_uid: "2.25.1234".into(),
            series_number: Some(1003),
            series_description: "petal denoised (research use): PET WB".into(),
            derivation_description: "petal 2.5D DnCNN, model version 1".into(),
            device_uid: "2.25.99".into(),
            software_version: "petal 0.1.0".into(),
            date: "20261128".into(),
            time: "120000".into(),
        }
    }

    #[test]
    fn derived_slice_keeps_values_geometry_and_records_its_source() {
        let spec = SeriesSpec::new(2);
        let source = spec.instance(1).expect("source");
        let values: Vec<f32> = (0..256).map(|i| (i as f32 - 20.0) * 123.4).collect();
        let dataset = read_dataset(&source).expect("source");
        let derived = derive_instance(dataset, &values, "2.25.1234.1", &derivation()).expect("derive");

        let (frames, object) = Frames::decode(&derived).expect("readable");
        let back = frames.frame_values(1).expect("frame");
        let step = 236.0 * 123.4 / 32767.0;
        for (v, b) in values.iter().zip(&back) {
            assert!((f64::from(*v) - b).abs() <= step, "{v} came back as {b}");
        }
        let get = |tag| object.get(tag).and_then(|e| e.to_str().ok()).map(|s| s.trim_matches(['\0', ' ']).to_owned());
        assert_eq!(get(tags::SOP_INSTANCE_UID).as_deref(), Some("2.25.1234.1"));
        assert_eq!(get(tags::SERIES_INSTANCE_UID).as_deref(), Some("2.25.1234"));
        assert_eq!(get(tags::STUDY_INSTANCE_UID), Some(spec.study_uid.clone()));
        assert_eq!(get(tags::IMAGE_POSITION_PATIENT).as_deref(), Some("-100\\-100\\3"));
        assert_eq!(get(tags::UNITS).as_deref(), Some("BQML"));
        assert_eq!(get(tags::RESCALE_INTERCEPT).as_deref(), Some("0"));
        assert_eq!(get(tags::IMAGE_TYPE).as_deref(), Some("DERIVED\\PRIMARY"));
        assert_eq!(get(tags::SERIES_NUMBER).as_deref(), Some("1003"));
        assert_eq!(object.meta().media_storage_sop_instance_uid(), "2.25.1234.1");
        let source_item = &object.get(tags::SOURCE_IMAGE_SEQUENCE).and_then(|e| e.items()).expect("sequence")[0];
        let referenced = source_item.get(tags::REFERENCED_SOP_INSTANCE_UID).and_then(|e| e.to_str().ok());
        assert_eq!(referenced.as_deref().map(|s| s.trim_matches('\0')), Some(spec.sop_instance_uid(1).as_str()));
        assert!(is_petal_output(&object));
        let (_, source_object) = Frames::decode(&source).expect("source");
        assert!(!is_petal_output(&source_object));
    }

    #[test]
    fn quantisation_handles_zero_and_refuses_nan() {
        let (pixels, slope) = quantise(&[0.0; 4]).expect("zeros");
        assert_eq!((pixels, slope), (vec![0; 4], 1.0));
        assert!(matches!(quantise(&[1.0, f32::NAN]), Err(DerivedError::NotFinite)));
        let (pixels, slope) = quantise(&[-5.0, 10.0]).expect("values");
        assert_eq!(pixels[1], 32767);
        assert!((f64::from(pixels[0]) * slope + 5.0).abs() <= slope);
    }

    #[test]
    fn wrong_sizes_are_refused() {
        let source = SeriesSpec::new(1).instance(0).expect("source");
        let result = derive_instance(read_dataset(&source).expect("source"), &[1.0; 10], "2.25.5", &derivation());
        assert!(matches!(result, Err(DerivedError::Size { values: 10, rows: 16, columns: 16 })));
    }
}
