//! DICOM: parsing and validating received instances, UIDs, SOP classes and the DICOM JSON
//! model, and the `multipart/related` encoding DICOMweb carries instances in (read by
//! STOW-RS and by clients of WADO-RS alike). Knows nothing of the database or of HTTP.

pub mod derived;
pub mod header;
pub mod instance;
pub mod json;
pub mod multipart;
pub mod part10;
pub mod pixels;
pub mod provenance;
pub mod render;
pub mod series_image;
pub mod series_kind;
pub mod simulated_series;
pub mod simulated_study;
pub mod sop_class;
pub mod suv;
pub mod synthetic;
pub mod transfer_syntax;
pub mod uid;
pub mod volume;
pub mod xml;

pub use instance::{InstanceError, ParsedInstance};
pub use uid::{Uid, UidError};
