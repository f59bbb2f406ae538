//! WADO-RS pixel resources: frames (raw, uncompressed), rendered and thumbnail PNGs.
//!
//! Rendering windows PET in SUVbw when the header allows it (default 0–6 SUV, or the
//! client's `window=center,width`), else in stored physical units from 0 to a robust
//! maximum. Compressed instances (RLE, deflated) are decoded first.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use serde::Deserialize;

use super::media::parse_accept;
use super::path_uid;
use crate::api::extract::Actor;
use crate::api::{ApiError, AppState};
use crate::dicom::pixels::Frames;
use crate::dicom::render::{self, Window};
use crate::dicom::suv::suv_bw_factor;
use crate::storage::audit::Outcome;
use crate::storage::index::{self, StoredInstance};

/// Default PET display range in SUV.
const DEFAULT_SUV_WINDOW: Window = Window { low: 0.0, high: 6.0 };
/// Longest edge of a thumbnail.
const THUMBNAIL_EDGE: u32 = 128;

#[derive(Debug, Deserialize)]
pub struct RenderParams {
    /// `center,width[,linear]`, in SUV when the instance allows SUV, else in its units.
    window: Option<String>,
}

/// A decoded instance ready to serve pixels from.
struct Decoded {
    frames: Frames,
    /// Bq/ml → SUVbw, when the header allows it.
    suv_factor: Option<f64>,
}

async fn decode(state: &AppState, instance: &StoredInstance) -> Result<Decoded, ApiError> {
    let bytes = state.blobs.get(&instance.blob_key).await.map_err(|e| ApiError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || {
        let (frames, object) = Frames::decode(&bytes)
            .map_err(|e| ApiError::NotAcceptable(format!("petal cannot decode this instance's pixel data: {e}")))?;
        Ok(Decoded { frames, suv_factor: suv_bw_factor(&object) })
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

/// The instances a pixel request is about, audited; 404 when none.
async fn find(
    state: &AppState,
    actor: &Actor,
    study: &str,
    series: &str,
    instance: Option<&str>,
) -> Result<Vec<StoredInstance>, ApiError> {
    let study = path_uid("study UID", study)?.to_string();
    let series = path_uid("series UID", series)?.to_string();
    let instance = instance.map(|i| path_uid("SOP instance UID", i)).transpose()?.map(|u| u.to_string());
    let found = index::instances_in(&state.db, &study, Some(&series), instance.as_deref()).await?;
    let patient = if found.is_empty() { None } else { index::study_patient(&state.db, &study).await? };
    let outcome = if found.is_empty() { Outcome::Failure } else { Outcome::Success };
    let resource = format!("/dicomweb/studies/{study}/series/{series}");
    actor.audit(&state.db, "dicom.pixels", &resource, patient.as_ref(), outcome).await?;
    if found.is_empty() {
        return Err(ApiError::NotFound("no stored instance matches these UIDs".into()));
    }
    Ok(found)
}

pub async fn frames(
    State(state): State<AppState>,
    actor: Actor,
    Path((study, series, instance, list)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accepted = parse_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())).iter().any(|m| {
        m.essence == "*/*"
            || m.essence == "multipart/*"
            || (m.essence == "multipart/related"
                && m.part_type().is_none_or(|t| t == "application/octet-stream" || t == "*/*")
                && m.param("transfer-syntax").is_none_or(|t| t == "*" || t == "1.2.840.10008.1.2.1"))
    });
    if !accepted {
        return Err(ApiError::NotAcceptable(
            "frames are served uncompressed as multipart/related; type=\"application/octet-stream\"".into(),
        ));
    }
    let numbers = parse_frame_list(&list)?;
    let found = find(&state, &actor, &study, &series, Some(&instance)).await?;
    let decoded = decode(&state, &found[0]).await?;
    let boundary = format!("petal-{}", uuid::Uuid::new_v4().simple());
    let mut body = BytesMut::new();
    for number in numbers {
        let bytes = decoded.frames.frame_bytes(number).ok_or_else(|| {
            ApiError::NotFound(format!("frame {number} does not exist; the instance has {}", decoded.frames.count))
        })?;
        body.put_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            )
            .as_bytes(),
        );
        body.put_slice(bytes);
        body.put_slice(b"\r\n");
    }
    body.put_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/related; type=\"application/octet-stream\"; boundary={boundary}");
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from(body.freeze())).into_response())
}

fn parse_frame_list(list: &str) -> Result<Vec<u32>, ApiError> {
    let numbers: Option<Vec<u32>> = list.split(',').map(|n| n.trim().parse::<u32>().ok().filter(|n| *n >= 1)).collect();
    numbers.filter(|n| !n.is_empty() && n.len() <= 10_000).ok_or_else(|| {
        ApiError::BadRequest(format!("`{list}` is not a comma-separated list of frame numbers starting at 1"))
    })
}

/// One PNG of the first frame of `instance`.
async fn rendered_png(
    state: &AppState,
    instance: &StoredInstance,
    params: &RenderParams,
    max_edge: Option<u32>,
) -> Result<Vec<u8>, ApiError> {
    let decoded = decode(state, instance).await?;
    let requested = match &params.window {
        Some(text) => Some(Window::parse(text).ok_or_else(|| {
            ApiError::BadRequest("`window` must be center,width[,linear] with a positive width".into())
        })?),
        None => None,
    };
    let frames = decoded.frames;
    let factor = decoded.suv_factor;
    tokio::task::spawn_blocking(move || {
        let mut values =
            frames.frame_values(1).ok_or_else(|| ApiError::NotFound("the instance has no frame".into()))?;
        if let Some(factor) = factor {
            values.iter_mut().for_each(|v| *v *= factor);
        }
        let window =
            requested.unwrap_or_else(|| if factor.is_some() { DEFAULT_SUV_WINDOW } else { Window::robust(&values) });
        render::png(&values, frames.rows, frames.columns, window, max_edge).map_err(|e| ApiError::Internal(e.into()))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

fn require_png(headers: &HeaderMap) -> Result<bool, ApiError> {
    let accept = parse_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let multipart =
        accept.iter().any(|m| m.essence == "multipart/related" && m.part_type().as_deref() == Some("image/png"));
    let single = accept.iter().any(|m| matches!(m.essence.as_str(), "image/png" | "image/*" | "*/*"));
    if multipart || single {
        Ok(multipart && !single)
    } else {
        Err(ApiError::NotAcceptable("rendered images are image/png".into()))
    }
}

fn png_response(png: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], png).into_response()
}

pub async fn instance_rendered(
    State(state): State<AppState>,
    actor: Actor,
    Path((study, series, instance)): Path<(String, String, String)>,
    Query(params): Query<RenderParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_png(&headers)?;
    let found = find(&state, &actor, &study, &series, Some(&instance)).await?;
    Ok(png_response(rendered_png(&state, &found[0], &params, None).await?))
}

pub async fn instance_thumbnail(
    State(state): State<AppState>,
    actor: Actor,
    Path((study, series, instance)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_png(&headers)?;
    let found = find(&state, &actor, &study, &series, Some(&instance)).await?;
    let params = RenderParams { window: None };
    Ok(png_response(rendered_png(&state, &found[0], &params, Some(THUMBNAIL_EDGE)).await?))
}

/// Every instance rendered, as `multipart/related; type="image/png"`, or the middle slice
/// as one PNG when only `image/png` is accepted.
pub async fn series_rendered(
    State(state): State<AppState>,
    actor: Actor,
    Path((study, series)): Path<(String, String)>,
    Query(params): Query<RenderParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let multipart = require_png(&headers)?;
    let found = find(&state, &actor, &study, &series, None).await?;
    if !multipart {
        return Ok(png_response(rendered_png(&state, &found[found.len() / 2], &params, None).await?));
    }
    let boundary = format!("petal-{}", uuid::Uuid::new_v4().simple());
    let mut body = BytesMut::new();
    for instance in &found {
        let png = rendered_png(&state, instance, &params, None).await?;
        body.put_slice(
            format!("--{boundary}\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n", png.len()).as_bytes(),
        );
        body.put_slice(&png);
        body.put_slice(b"\r\n");
    }
    body.put_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/related; type=\"image/png\"; boundary={boundary}");
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from(body.freeze())).into_response())
}

/// The middle slice of the series, small.
pub async fn series_thumbnail(
    State(state): State<AppState>,
    actor: Actor,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_png(&headers)?;
    let found = find(&state, &actor, &study, &series, None).await?;
    let params = RenderParams { window: None };
    Ok(png_response(rendered_png(&state, &found[found.len() / 2], &params, Some(THUMBNAIL_EDGE)).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lists_are_validated() {
        assert_eq!(parse_frame_list("1,3, 2").ok(), Some(vec![1, 3, 2]));
        assert!(parse_frame_list("0").is_err());
        assert!(parse_frame_list("1,,2").is_err());
        assert!(parse_frame_list("a").is_err());
    }
}
