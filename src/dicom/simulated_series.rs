//! Simulated volumes as PET Image Storage series, with the tags real scanners write: Units
//! BQML with a per-slice RescaleSlope, decay correction to the series start, the
//! radiopharmaceutical (dose, start time, half-life), patient weight, geometry and
//! NumberOfSlices, so that SUVbw computed from the header reads the phantom's SUV.
//!
//! UIDs are derived from the study's seed and settings, so writing the same study twice
//! gives the same files (and re-sending them to a PACS is idempotent).

use std::path::{Path, PathBuf};

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use sha2::{Digest, Sha256};

use super::derived::quantise;
use super::series_kind::PET_IMAGE_STORAGE;
use super::synthetic::write_file;
use crate::science::image::Image3;
use crate::science::simulation::phantom::PatientParameters;

/// F-18 half-life (s).
pub const F18_HALF_LIFE_S: f64 = 6586.2;
/// The date every simulated study is acquired on, and when its series start.
const STUDY_DATE: &str = "20260112";
const SERIES_START_S: f64 = 10.0 * 3600.0 + 30.0 * 60.0;

/// What every series of one simulated study shares.
#[derive(Debug, Clone)]
pub struct StudyHeader {
    pub patient: PatientParameters,
    pub patient_id: String,
    pub patient_name: String,
    pub study_uid: String,
    pub frame_of_reference_uid: String,
    /// Seeds the series and instance UIDs.
    pub uid_seed: String,
    /// Full-count scan time (s).
    pub seconds_per_bed: f64,
}

/// One series of the study.
#[derive(Debug, Clone)]
pub struct SeriesHeader {
    /// Distinguishes the series' UIDs, e.g. "full-count" or "low-count-03".
    pub role: String,
    pub series_number: i32,
    pub description: String,
    /// ReconstructionMethod, e.g. "OSEM 3i8s 6mm".
    pub reconstruction: String,
    /// Share of the full scan's time (and counts) this series was reconstructed from.
    pub fraction: f64,
}

/// Why a series could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SeriesWriteError {
    #[error("a slice has values that are not finite")]
    NotFinite,
    #[error(transparent)]
    Encode(#[from] super::synthetic::SyntheticError),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// A `2.25.` UID (a 128-bit number) derived from `parts`.
pub fn derived_uid(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

impl StudyHeader {
    /// Bq/ml per SUV: the decayed dose per gram of patient, at the series start.
    pub fn bqml_per_suv(&self) -> f64 {
        let decay = (-(self.patient.uptake_minutes * 60.0) * std::f64::consts::LN_2 / F18_HALF_LIFE_S).exp();
        self.patient.injected_dose_bq * decay / (self.patient.weight_kg * 1000.0)
    }

    fn series_time(&self) -> String {
        hms(SERIES_START_S)
    }

    fn injection_time(&self) -> String {
        hms(SERIES_START_S - self.patient.uptake_minutes * 60.0)
    }
}

fn hms(seconds: f64) -> String {
    let s = seconds.round() as i64;
    format!("{:02}{:02}{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn text(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

fn unsigned(tag: Tag, value: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(value))
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

/// A code sequence item (SNOMED CT).
fn code(value: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        text(tags::CODE_VALUE, VR::SH, value),
        text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "SCT"),
        text(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

/// A decimal string of at most 16 characters.
fn ds(value: f64) -> String {
    for precision in (0..=8).rev() {
        let text = format!("{value:.precision$}");
        if text.len() <= 16 {
            return text;
        }
    }
    format!("{value:.6e}")
}

fn radiopharmaceutical(study: &StudyHeader) -> InMemDicomObject {
    let injection = study.injection_time();
    let mut info = InMemDicomObject::from_element_iter([
        text(tags::RADIOPHARMACEUTICAL, VR::LO, "Fluorodeoxyglucose"),
        text(tags::RADIOPHARMACEUTICAL_START_TIME, VR::TM, &injection),
        text(tags::RADIOPHARMACEUTICAL_START_DATE_TIME, VR::DT, &format!("{STUDY_DATE}{injection}")),
        text(tags::RADIONUCLIDE_TOTAL_DOSE, VR::DS, &ds(study.patient.injected_dose_bq)),
        text(tags::RADIONUCLIDE_HALF_LIFE, VR::DS, &ds(F18_HALF_LIFE_S)),
        text(tags::RADIONUCLIDE_POSITRON_FRACTION, VR::DS, "0.9673"),
    ]);
    info.put(sequence(tags::RADIONUCLIDE_CODE_SEQUENCE, vec![code("77004003", "^18^Fluorine")]));
    info.put(sequence(tags::RADIOPHARMACEUTICAL_CODE_SEQUENCE, vec![code("35321007", "Fluorodeoxyglucose F^18^")]));
    info
}

/// The data set of one slice, before pixel data.
fn slice_dataset(study: &StudyHeader, series: &SeriesHeader, image: &Image3, z: usize, slope: f64) -> InMemDicomObject {
    let grid = image.grid;
    let series_uid = derived_uid(&[&study.uid_seed, &series.role]);
    let sop_uid = derived_uid(&[&study.uid_seed, &series.role, &z.to_string()]);
    // Slice 0 is the most inferior; instance 1 is the most superior, as scanners number them.
    let number = grid.slices - z;
    let position = [grid.x_mm(0), grid.y_mm(0), grid.z_mm(z)];
    let frame_ms = study.seconds_per_bed * series.fraction * 1000.0;
    let decay_constant = std::f64::consts::LN_2 / F18_HALF_LIFE_S;
    let frame_s = frame_ms / 1000.0;
    let decay_factor = decay_constant * frame_s / (1.0 - (-decay_constant * frame_s).exp());
    let patient = &study.patient;
    let series_time = study.series_time();
    let mut object = InMemDicomObject::from_element_iter([
        text(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
        text(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY"),
        text(tags::SOP_CLASS_UID, VR::UI, PET_IMAGE_STORAGE),
        text(tags::SOP_INSTANCE_UID, VR::UI, &sop_uid),
        text(tags::STUDY_DATE, VR::DA, STUDY_DATE),
        text(tags::SERIES_DATE, VR::DA, STUDY_DATE),
        text(tags::ACQUISITION_DATE, VR::DA, STUDY_DATE),
        text(tags::CONTENT_DATE, VR::DA, STUDY_DATE),
        text(tags::STUDY_TIME, VR::TM, &series_time),
        text(tags::SERIES_TIME, VR::TM, &series_time),
        text(tags::ACQUISITION_TIME, VR::TM, &series_time),
        text(tags::CONTENT_TIME, VR::TM, &series_time),
        text(tags::ACCESSION_NUMBER, VR::SH, &format!("SIM{}", patient.seed)),
        text(tags::MODALITY, VR::CS, "PT"),
        text(tags::MANUFACTURER, VR::LO, "petal simulator"),
        text(tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""),
        text(tags::STUDY_DESCRIPTION, VR::LO, "PET WB FDG (simulated)"),
        text(tags::SERIES_DESCRIPTION, VR::LO, &series.description),
        text(tags::MANUFACTURER_MODEL_NAME, VR::LO, "digital phantom"),
        text(tags::PATIENT_NAME, VR::PN, &study.patient_name),
        text(tags::PATIENT_ID, VR::LO, &study.patient_id),
        text(tags::PATIENT_BIRTH_DATE, VR::DA, ""),
        text(tags::PATIENT_SEX, VR::CS, &patient.sex.to_string()),
        text(tags::PATIENT_AGE, VR::AS, &format!("{:03}Y", patient.age_years)),
        text(tags::PATIENT_SIZE, VR::DS, &ds(patient.height_m)),
        text(tags::PATIENT_WEIGHT, VR::DS, &ds(patient.weight_kg)),
        text(tags::SLICE_THICKNESS, VR::DS, &ds(grid.slice_mm)),
        text(tags::SOFTWARE_VERSIONS, VR::LO, concat!("petal ", env!("CARGO_PKG_VERSION"))),
        text(tags::RECONSTRUCTION_DIAMETER, VR::DS, &ds(grid.pixel_mm * grid.size as f64)),
        text(tags::ACTUAL_FRAME_DURATION, VR::IS, &format!("{}", frame_ms.round() as i64)),
        text(tags::LATERALITY, VR::CS, ""),
        text(tags::STUDY_INSTANCE_UID, VR::UI, &study.study_uid),
        text(tags::SERIES_INSTANCE_UID, VR::UI, &series_uid),
        text(tags::STUDY_ID, VR::SH, "1"),
        text(tags::SERIES_NUMBER, VR::IS, &series.series_number.to_string()),
        text(tags::INSTANCE_NUMBER, VR::IS, &number.to_string()),
        text(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            &format!("{}\\{}\\{}", ds(position[0]), ds(position[1]), ds(position[2])),
        ),
        text(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0"),
        text(tags::FRAME_OF_REFERENCE_UID, VR::UI, &study.frame_of_reference_uid),
        text(tags::POSITION_REFERENCE_INDICATOR, VR::LO, ""),
        text(tags::SLICE_LOCATION, VR::DS, &ds(position[2])),
        unsigned(tags::SAMPLES_PER_PIXEL, 1),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        unsigned(tags::ROWS, grid.size as u16),
        unsigned(tags::COLUMNS, grid.size as u16),
        text(tags::PIXEL_SPACING, VR::DS, &format!("{}\\{}", ds(grid.pixel_mm), ds(grid.pixel_mm))),
        unsigned(tags::BITS_ALLOCATED, 16),
        unsigned(tags::BITS_STORED, 16),
        unsigned(tags::HIGH_BIT, 15),
        unsigned(tags::PIXEL_REPRESENTATION, 1),
        text(tags::RESCALE_INTERCEPT, VR::DS, "0"),
        text(tags::RESCALE_SLOPE, VR::DS, &super::derived::format_ds(slope)),
        text(tags::RESCALE_TYPE, VR::LO, "BQML"),
        text(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"),
        text(tags::UNITS, VR::CS, "BQML"),
        text(tags::COUNTS_SOURCE, VR::CS, "EMISSION"),
        text(tags::SERIES_TYPE, VR::CS, "WHOLE BODY\\IMAGE"),
        text(tags::CORRECTED_IMAGE, VR::CS, "DECY\\ATTN\\SCAT\\DTIM\\RAN\\NORM"),
        text(tags::RANDOMS_CORRECTION_METHOD, VR::CS, "DLYD"),
        text(tags::ATTENUATION_CORRECTION_METHOD, VR::LO, "measured, CT-based"),
        text(tags::SCATTER_CORRECTION_METHOD, VR::LO, "model-based"),
        text(tags::DECAY_CORRECTION, VR::CS, "START"),
        text(tags::RECONSTRUCTION_METHOD, VR::LO, &series.reconstruction),
        text(tags::COLLIMATOR_TYPE, VR::CS, "NONE"),
        text(tags::FRAME_REFERENCE_TIME, VR::DS, "0"),
        text(tags::DECAY_FACTOR, VR::DS, &ds(decay_factor)),
        unsigned(tags::IMAGE_INDEX, number as u16),
    ]);
    object.put(unsigned(tags::NUMBER_OF_SLICES, grid.slices as u16));
    object.put(sequence(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE, vec![radiopharmaceutical(study)]));
    let mut orientation = code("102538003", "recumbent");
    orientation.put(sequence(tags::PATIENT_ORIENTATION_MODIFIER_CODE_SEQUENCE, vec![code("40199007", "supine")]));
    object.put(sequence(tags::PATIENT_ORIENTATION_CODE_SEQUENCE, vec![orientation]));
    object.put(sequence(tags::PATIENT_GANTRY_RELATIONSHIP_CODE_SEQUENCE, vec![code("102540008", "headfirst")]));
    object.put(sequence(tags::ACQUISITION_CONTEXT_SEQUENCE, Vec::new()));
    object
}

/// Writes `image` (SUV) as a series of Part 10 files in `directory`; returns their paths.
pub fn write_series(
    study: &StudyHeader,
    series: &SeriesHeader,
    image: &Image3,
    directory: &Path,
) -> Result<Vec<PathBuf>, SeriesWriteError> {
    std::fs::create_dir_all(directory).map_err(|source| SeriesWriteError::Io { path: directory.into(), source })?;
    let bqml_per_suv = study.bqml_per_suv() as f32;
    let mut paths = Vec::with_capacity(image.grid.slices);
    for z in 0..image.grid.slices {
        let values: Vec<f32> = image.slice(z).iter().map(|v| v.max(0.0) * bqml_per_suv).collect();
        let (pixels, slope) = quantise(&values).map_err(|_| SeriesWriteError::NotFinite)?;
        let mut object = slice_dataset(study, series, image, z, slope);
        object.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::I16(pixels.into())));
        let sop_uid = derived_uid(&[&study.uid_seed, &series.role, &z.to_string()]);
        let bytes = write_file(object, PET_IMAGE_STORAGE, &sop_uid)?;
        let path = directory.join(format!("IM{:04}.dcm", image.grid.slices - z));
        std::fs::write(&path, bytes).map_err(|source| SeriesWriteError::Io { path: path.clone(), source })?;
        paths.push(path);
    }
    Ok(paths)
}
