//! What kind of series an instance belongs to, from its header alone (docs/interoperability.md §3):
//! a static full-count PET series is denoised once complete; dynamic, gated and Enhanced
//! (multi-frame) PET, Noise2Noise halves, low-count realizations and petal's own output are
//! stored and served but never denoised, each with a reason a person can read.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::header::text;
use super::provenance::is_petal_output;

/// PET Image Storage.
pub const PET_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.128";
/// Enhanced PET Image Storage (multi-frame).
pub const ENHANCED_PET_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.130";

/// SeriesDescription markers (matched case-insensitively) of series that are training
/// material rather than images to denoise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptionRules {
    /// The two halves of one acquisition for Noise2Noise, e.g. "N2N half A".
    pub n2n_half: Vec<String>,
    /// Reduced-count realizations, e.g. "low-count 10%".
    pub low_count: Vec<String>,
}

impl Default for DescriptionRules {
    fn default() -> Self {
        Self {
            n2n_half: vec!["n2n half".into(), "noise2noise half".into()],
            low_count: vec!["low-count".into(), "low count".into(), "lowcount".into()],
        }
    }
}

/// The kind of a series, and for denoisable ones how many instances complete it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeriesKind {
    /// A static full-count PET series; `expected` instances complete it when the header says.
    Denoisable { expected: Option<u32> },
    /// Stored and served, not denoised; `reason` says why.
    NotDenoised { reason: String },
}

fn count(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<u32> {
    object.get(tag).and_then(|e| e.to_int::<u32>().ok()).filter(|n| *n > 0)
}

/// The header values that decide a series' kind, read once per instance at ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindFacts {
    /// ContributingEquipmentSequence names petal (see [`is_petal_output`]).
    pub petal_output: bool,
    pub sop_class_uid: String,
    pub description: String,
    /// First value of SeriesType, upper case.
    pub series_type: String,
    pub time_slices: u32,
    pub time_slots: u32,
    /// NumberOfSlices, when present and positive.
    pub slices: Option<u32>,
}

impl KindFacts {
    pub fn of(object: &InMemDicomObject) -> Self {
        Self {
            petal_output: is_petal_output(object),
            sop_class_uid: text(object, tags::SOP_CLASS_UID).unwrap_or_default(),
            description: text(object, tags::SERIES_DESCRIPTION).unwrap_or_default(),
            series_type: text(object, tags::SERIES_TYPE)
                .and_then(|v| v.split('\\').next().map(|s| s.trim().to_uppercase()))
                .unwrap_or_default(),
            time_slices: count(object, tags::NUMBER_OF_TIME_SLICES).unwrap_or(1),
            time_slots: count(object, tags::NUMBER_OF_TIME_SLOTS).unwrap_or(1),
            slices: count(object, tags::NUMBER_OF_SLICES),
        }
    }
}

/// Classifies the series of `object` (any of its instances).
pub fn classify(object: &InMemDicomObject, rules: &DescriptionRules) -> SeriesKind {
    classify_facts(&KindFacts::of(object), rules)
}

/// Whether the series is a Noise2Noise half: a PET image series (not petal's) whose
/// SeriesDescription matches a rule for halves.
pub fn is_n2n_half(facts: &KindFacts, rules: &DescriptionRules) -> bool {
    let description = facts.description.to_lowercase();
    !facts.petal_output
        && facts.sop_class_uid == PET_IMAGE_STORAGE
        && rules.n2n_half.iter().any(|m| description.contains(&m.to_lowercase()))
}

/// Classifies a series from the facts of one of its instances.
pub fn classify_facts(facts: &KindFacts, rules: &DescriptionRules) -> SeriesKind {
    let not = |reason: &str| SeriesKind::NotDenoised { reason: reason.to_owned() };
    if facts.petal_output {
        return not("derived by petal (ContributingEquipmentSequence names petal): never denoised again");
    }
    match facts.sop_class_uid.as_str() {
        PET_IMAGE_STORAGE => {}
        ENHANCED_PET_IMAGE_STORAGE => return not("Enhanced (multi-frame) PET is stored but not denoised"),
        _ => return not("not a PET image series"),
    }
    let description = facts.description.to_lowercase();
    if is_n2n_half(facts, rules) {
        return not("a Noise2Noise half (training material for online learning), not denoised");
    }
    if rules.low_count.iter().any(|m| description.contains(&m.to_lowercase())) {
        return not("a low-count realization (training and evaluation material), not denoised");
    }
    if facts.series_type == "DYNAMIC" || facts.time_slices > 1 {
        return not("a dynamic series (several time frames): stored but not denoised");
    }
    if facts.series_type == "GATED" || facts.time_slots > 1 {
        return not("a gated series: stored but not denoised");
    }
    let expected = facts.slices.map(|slices| slices * facts.time_slices * facts.time_slots);
    SeriesKind::Denoisable { expected }
}

#[cfg(test)]
mod tests {
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};

    use super::*;
    use crate::dicom::synthetic::SeriesSpec;

    fn with(mut object: InMemDicomObject, elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
        for element in elements {
            object.put(element);
        }
        object
    }

    fn us(tag: dicom_core::Tag, value: u16) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, VR::US, PrimitiveValue::from(value))
    }

    fn cs(tag: dicom_core::Tag, value: &str) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, VR::CS, PrimitiveValue::from(value))
    }

    fn reason(kind: SeriesKind) -> String {
        match kind {
            SeriesKind::NotDenoised { reason } => reason,
            other => panic!("expected not denoised, got {other:?}"),
        }
    }

    #[test]
    fn static_pet_is_denoisable_with_the_expected_count() {
        let rules = DescriptionRules::default();
        let pet = SeriesSpec::new(1).dataset(0);
        assert_eq!(classify(&pet, &rules), SeriesKind::Denoisable { expected: None });
        let counted = with(pet, vec![us(tags::NUMBER_OF_SLICES, 47), cs(tags::SERIES_TYPE, "WHOLE BODY\\IMAGE")]);
        assert_eq!(classify(&counted, &rules), SeriesKind::Denoisable { expected: Some(47) });
    }

    #[test]
    fn what_is_never_denoised_says_why() {
        let rules = DescriptionRules::default();
        let pet = || SeriesSpec::new(1).dataset(0);
        let dynamic = with(pet(), vec![us(tags::NUMBER_OF_TIME_SLICES, 12)]);
        assert!(reason(classify(&dynamic, &rules)).contains("dynamic"));
        let gated = with(pet(), vec![cs(tags::SERIES_TYPE, "GATED\\IMAGE")]);
        assert!(reason(classify(&gated, &rules)).contains("gated"));
        let half = with(
            pet(),
            vec![DataElement::new(tags::SERIES_DESCRIPTION, VR::LO, PrimitiveValue::from("PET WB N2N Half A"))],
        );
        assert!(reason(classify(&half, &rules)).contains("Noise2Noise"));
        let low = with(
            pet(),
            vec![DataElement::new(tags::SERIES_DESCRIPTION, VR::LO, PrimitiveValue::from("Low-Count r03"))],
        );
        assert!(reason(classify(&low, &rules)).contains("low-count"));
        let mut enhanced = SeriesSpec::new(1);
        enhanced.sop_class_uid = ENHANCED_PET_IMAGE_STORAGE.into();
        assert!(reason(classify(&enhanced.dataset(0), &rules)).contains("Enhanced"));
        let mut ct = SeriesSpec::new(1);
        ct.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2".into();
        assert!(reason(classify(&ct.dataset(0), &rules)).contains("not a PET"));
    }
}
