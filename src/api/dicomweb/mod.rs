//! DICOMweb (PS3.18) under `/dicomweb`: STOW-RS ingest, QIDO-RS search, WADO-RS retrieval.

pub mod media;
pub mod pixels;
pub mod qido;
pub mod stow;
pub mod wado;

use axum::http::HeaderMap;

use super::ApiError;
use crate::dicom::Uid;

/// The externally visible base URL of `/dicomweb`, honouring a reverse proxy's
/// `X-Forwarded-Proto` and `X-Forwarded-Host`.
pub fn base_url(headers: &HeaderMap) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or_default().trim().to_owned())
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
    };
    let scheme = header("x-forwarded-proto").filter(|p| p == "http" || p == "https").unwrap_or_else(|| "http".into());
    let host = header("x-forwarded-host").or_else(|| header("host")).unwrap_or_else(|| "localhost".into());
    format!("{scheme}://{host}/dicomweb")
}

/// Parses a UID from a request path, with a 400 that says which one is wrong.
pub fn path_uid(name: &str, text: &str) -> Result<Uid, ApiError> {
    Uid::parse(text).map_err(|e| ApiError::BadRequest(format!("the {name} in the path is not a valid UID: {e}")))
}
