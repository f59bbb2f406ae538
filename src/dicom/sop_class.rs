//! The SOP classes petal stores. petal is a PET server: anything else is refused at ingest.

/// PET Image Storage: single-frame slices, what scanners send and petal denoises.
pub const PET_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.128";
/// Enhanced PET Image Storage: multi-frame; stored and served, not denoised.
pub const ENHANCED_PET_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.130";
/// Legacy Converted Enhanced PET Image Storage: multi-frame; stored and served, not denoised.
pub const LEGACY_CONVERTED_ENHANCED_PET_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.128.1";

/// The SOP classes petal stores.
pub const ACCEPTED: [&str; 3] = [PET_IMAGE, ENHANCED_PET_IMAGE, LEGACY_CONVERTED_ENHANCED_PET_IMAGE];

/// Whether petal accepts instances of this SOP class.
pub fn is_accepted(sop_class_uid: &str) -> bool {
    ACCEPTED.contains(&sop_class_uid)
}
