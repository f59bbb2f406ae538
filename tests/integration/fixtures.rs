//! DICOM test data: synthetic PET series (from `petal::dicom::synthetic`), multipart bodies in the forms real clients send. Also the real PET slices in
//! ../shared/data/real-pet.

use std::path::PathBuf;

pub use petal::dicom::synthetic::{SeriesSpec, write_file};

pub const BOUNDARY: &str = "petal-test-boundary-7d3f";

/// A `multipart/related` body the way dicomweb-client writes it (leading CRLF, trailing CRLF).
pub fn multipart(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
        body.extend_from_slice(part);
    }
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The Content-Type that goes with [`multipart`].
pub fn multipart_type() -> String {
    format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}")
}

/// The real PET slices shipped in shared/data (see its README for their citation).
pub fn real_pet_files() -> Vec<PathBuf> {
    let dir = std::env::var("PETAL_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")))
        .join("real-pet");
    let files = vec![dir.join("acrin_flt_1.dcm"), dir.join("acrin_flt_2.dcm")];
    for file in &files {
        assert!(file.exists(), "{} is missing: set PETAL_SHARED_DATA to the shared data folder", file.display());
    }
    files
}
