//! One received DICOM instance: parsed, validated and reduced to what the index needs.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use super::header::strip_preamble;

use super::json;
use super::sop_class;
use super::uid::{Uid, UidError};

/// Why an instance cannot be stored, in terms a sender can act on. Each maps to a
/// PS3.18 failure reason in STOW-RS.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("not a readable DICOM instance: {0}")]
    Unreadable(String),
    /// A DICOM reader's or converter's error, kept as the source; `context` says what was
    /// being read (empty for the file itself).
    #[error("not a readable DICOM instance: {context}{source}")]
    Undecodable { context: &'static str, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("required attribute {name} {tag} is missing or empty")]
    MissingAttribute { name: &'static str, tag: Tag },
    #[error("attribute {name} is not a valid UID: {source}")]
    BadUid { name: &'static str, source: UidError },
    #[error("SOP class {0} is not PET: petal stores PET images only")]
    NotPet(String),
}

impl InstanceError {
    /// Wraps a reader's error, with what was being read.
    pub fn undecodable(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Undecodable { context, source: Box::new(source) }
    }
}

/// The identity and index facts of one instance, plus its metadata as DICOM JSON.
#[derive(Debug, Clone)]
pub struct ParsedInstance {
    pub study_uid: Uid,
    pub series_uid: Uid,
    pub sop_instance_uid: Uid,
    pub sop_class_uid: String,
    pub transfer_syntax_uid: String,
    pub patient: PatientFacts,
    pub study: StudyFacts,
    pub series: SeriesFacts,
    pub image: ImageFacts,
    /// What decides whether (and when) the series is denoised.
    pub kind: super::series_kind::KindFacts,
    /// The data set as DICOM JSON (PS3.18 Annex F) without Pixel Data, whose place is
    /// taken by a `BulkDataURI` when served.
    pub metadata: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct PatientFacts {
    pub patient_id: String,
    pub issuer: String,
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct StudyFacts {
    pub date: Option<String>,
    pub time: Option<String>,
    pub accession_number: Option<String>,
    pub study_id: Option<String>,
    pub description: Option<String>,
    pub referring_physician: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SeriesFacts {
    pub modality: String,
    pub number: Option<i64>,
    pub description: Option<String>,
    pub frame_of_reference_uid: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ImageFacts {
    pub instance_number: Option<i64>,
    pub rows: Option<i64>,
    pub columns: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub image_position: Option<String>,
    pub image_orientation: Option<String>,
    pub pixel_spacing: Option<String>,
    pub slice_thickness: Option<f64>,
}

impl ParsedInstance {
    /// Parses a DICOM Part 10 stream (with or without the 128-byte preamble) and checks
    /// what petal requires of an instance it stores.
    pub fn parse(bytes: &[u8]) -> Result<Self, InstanceError> {
        let object =
            OpenFileOptions::new().from_reader(strip_preamble(bytes)).map_err(|e| InstanceError::undecodable("", e))?;
        Self::from_object(&object)
    }

    fn from_object(object: &DefaultDicomObject) -> Result<Self, InstanceError> {
        let sop_class_uid = required(object, tags::SOP_CLASS_UID, "SOPClassUID")?;
        let sop_class_uid = sop_class_uid.trim_end_matches(['\0', ' ']).to_owned();
        if !sop_class::is_accepted(&sop_class_uid) {
            return Err(InstanceError::NotPet(sop_class_uid));
        }
        let uid = |tag, name| -> Result<Uid, InstanceError> {
            Uid::parse(&required(object, tag, name)?).map_err(|source| InstanceError::BadUid { name, source })
        };
        // An image without pixels (e.g. a file cut off at an element boundary) is not a PET image.
        for (tag, name) in [(tags::ROWS, "Rows"), (tags::COLUMNS, "Columns")] {
            required(object, tag, name)?;
        }
        if [tags::PIXEL_DATA, tags::FLOAT_PIXEL_DATA, tags::DOUBLE_FLOAT_PIXEL_DATA]
            .iter()
            .all(|t| object.get(*t).is_none())
        {
            return Err(InstanceError::MissingAttribute { name: "PixelData", tag: tags::PIXEL_DATA });
        }
        let study_uid = uid(tags::STUDY_INSTANCE_UID, "StudyInstanceUID")?;
        let series_uid = uid(tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?;
        let sop_instance_uid = uid(tags::SOP_INSTANCE_UID, "SOPInstanceUID")?;
        let text = |tag| optional(object, tag);
        let number = |tag| optional(object, tag).and_then(|v| first_value(&v).parse::<i64>().ok());
        let patient = PatientFacts {
            patient_id: text(tags::PATIENT_ID).unwrap_or_default(),
            issuer: text(tags::ISSUER_OF_PATIENT_ID).unwrap_or_default(),
            name: text(tags::PATIENT_NAME),
            birth_date: text(tags::PATIENT_BIRTH_DATE),
            sex: text(tags::PATIENT_SEX),
        };
        let study = StudyFacts {
            date: text(tags::STUDY_DATE),
            time: text(tags::STUDY_TIME),
            accession_number: text(tags::ACCESSION_NUMBER),
            study_id: text(tags::STUDY_ID),
            description: text(tags::STUDY_DESCRIPTION),
            referring_physician: text(tags::REFERRING_PHYSICIAN_NAME),
        };
        let series = SeriesFacts {
            modality: text(tags::MODALITY).unwrap_or_else(|| "PT".to_owned()),
            number: number(tags::SERIES_NUMBER),
            description: text(tags::SERIES_DESCRIPTION),
            frame_of_reference_uid: text(tags::FRAME_OF_REFERENCE_UID),
        };
        let image = ImageFacts {
            instance_number: number(tags::INSTANCE_NUMBER),
            rows: number(tags::ROWS),
            columns: number(tags::COLUMNS),
            number_of_frames: number(tags::NUMBER_OF_FRAMES),
            image_position: text(tags::IMAGE_POSITION_PATIENT),
            image_orientation: text(tags::IMAGE_ORIENTATION_PATIENT),
            pixel_spacing: text(tags::PIXEL_SPACING),
            slice_thickness: text(tags::SLICE_THICKNESS).and_then(|v| v.trim().parse().ok()),
        };
        let metadata = json::dataset_without_pixel_data(object)
            .map_err(|e| InstanceError::undecodable("cannot express the data set as DICOM JSON: ", e))?;
        Ok(ParsedInstance {
            study_uid,
            series_uid,
            sop_instance_uid,
            sop_class_uid,
            transfer_syntax_uid: object.meta().transfer_syntax().trim_end_matches(['\0', ' ']).to_owned(),
            patient,
            study,
            series,
            image,
            kind: super::series_kind::KindFacts::of(object),
            metadata,
        })
    }
}

/// Skips the 128-byte preamble when the `DICM` magic follows it.
fn optional(object: &DefaultDicomObject, tag: Tag) -> Option<String> {
    super::header::text(object, tag)
}

fn required(object: &DefaultDicomObject, tag: Tag, name: &'static str) -> Result<String, InstanceError> {
    optional(object, tag).ok_or(InstanceError::MissingAttribute { name, tag })
}

/// The first of a multi-valued string (`a\b` → `a`).
fn first_value(value: &str) -> &str {
    value.split('\\').next().unwrap_or_default().trim()
}

/// SOP Class UID and SOP Instance UID of a data set that may not pass validation, for
/// naming it in a failure report. `None` for what cannot be read.
pub fn peek_identity(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match OpenFileOptions::new().from_reader(strip_preamble(bytes)) {
        Ok(object) => (optional(&object, tags::SOP_CLASS_UID), optional(&object, tags::SOP_INSTANCE_UID)),
        Err(_) => (None, None),
    }
}
