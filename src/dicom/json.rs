//! The DICOM JSON model (PS3.18 Annex F): data sets as JSON, attribute names for QIDO.

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use serde_json::{Map, Value, json};

/// The data set (not the file meta group) as DICOM JSON, without Pixel Data.
pub fn dataset_without_pixel_data(object: &DefaultDicomObject) -> Result<Value, serde_json::Error> {
    // Only the other elements are copied: cloning the object and then removing the pixels
    // copied every slice's pixels once more, into a buffer rounded up to the next power of
    // two (128 KiB for a 192×192 slice), for each instance received.
    const PIXELS: [Tag; 3] = [tags::PIXEL_DATA, tags::FLOAT_PIXEL_DATA, tags::DOUBLE_FLOAT_PIXEL_DATA];
    let dataset = InMemDicomObject::from_element_iter(
        object.iter().filter(|element| !PIXELS.contains(&element.header().tag)).cloned(),
    );
    dicom_json::to_value(&dataset)
}

/// `GGGGEEEE`, the key of an attribute in DICOM JSON.
pub fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

/// Resolves a QIDO attribute given as a keyword (`PatientID`) or a tag (`00100020`).
pub fn resolve_attribute(name: &str) -> Option<Tag> {
    if name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        let group = u16::from_str_radix(&name[..4], 16).ok()?;
        let element = u16::from_str_radix(&name[4..], 16).ok()?;
        return Some(Tag(group, element));
    }
    StandardDataDictionary.by_name(name).map(|entry| entry.tag_range().inner())
}

/// The VR of a standard attribute, for building DICOM JSON by hand.
pub fn vr_of(tag: Tag) -> &'static str {
    StandardDataDictionary.by_tag(tag).map(|e| e.vr().relaxed().to_string()).unwrap_or("UN")
}

/// One DICOM JSON attribute with string values (`None` gives an attribute without value).
pub fn attribute(vr: &str, values: &[&str]) -> Value {
    if values.is_empty() {
        json!({ "vr": vr })
    } else if vr == "PN" {
        json!({ "vr": vr, "Value": values.iter().map(|v| json!({ "Alphabetic": v })).collect::<Vec<_>>() })
    } else {
        json!({ "vr": vr, "Value": values })
    }
}

/// Sets `tag` in a DICOM JSON object to a string value (or an empty attribute).
pub fn set_text(object: &mut Map<String, Value>, tag: Tag, value: Option<&str>) {
    let values: Vec<&str> = value.into_iter().collect();
    object.insert(tag_key(tag), attribute(vr_of(tag), &values));
}

/// Sets `tag` to an integer value (IS, US, UL...).
pub fn set_number(object: &mut Map<String, Value>, tag: Tag, value: Option<i64>) {
    // IS values are JSON numbers, as PS3.18 Table F.2.3-1 gives them.
    let vr = vr_of(tag);
    let entry = match value {
        Some(n) => json!({ "vr": vr, "Value": [n] }),
        None => json!({ "vr": vr }),
    };
    object.insert(tag_key(tag), entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_resolve_by_keyword_and_tag() {
        assert_eq!(resolve_attribute("PatientID"), Some(tags::PATIENT_ID));
        assert_eq!(resolve_attribute("00100020"), Some(tags::PATIENT_ID));
        assert_eq!(resolve_attribute("NoSuchKeyword"), None);
        assert_eq!(tag_key(tags::STUDY_INSTANCE_UID), "0020000D");
        assert_eq!(vr_of(tags::PATIENT_NAME), "PN");
    }
}
