//! How petal recognises its own output: the ContributingEquipmentSequence that
//! [`super::derived`] writes into every derived instance. Headers, not the index, decide, so
//! a series that went out to a PACS and came back is still recognised and never denoised
//! again.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::header::text as text_of;

/// Manufacturer written into ContributingEquipmentSequence; with the DeviceUID it marks
/// petal's own series.
pub const PETAL_MANUFACTURER: &str = "petal";

/// Whether an instance was derived by petal: its ContributingEquipmentSequence names petal
/// as the manufacturer and carries a DeviceUID. Headers, not the index, decide, so a series
/// that went out to a PACS and came back is still recognised.
pub fn is_petal_output(object: &InMemDicomObject) -> bool {
    object.get(tags::CONTRIBUTING_EQUIPMENT_SEQUENCE).and_then(|e| e.items()).is_some_and(|items| {
        items.iter().any(|item| {
            text_of(item, tags::MANUFACTURER).as_deref() == Some(PETAL_MANUFACTURER)
                && item.get(tags::DEVICE_UID).is_some()
        })
    })
}
