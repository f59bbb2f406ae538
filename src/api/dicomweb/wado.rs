//! WADO-RS: retrieve studies, series and instances as stored (PS3.18 §10.4), their
//! metadata as DICOM JSON, and study deletion for retention and patient requests.
//!
//! Instances are streamed from the blob store one part at a time. A client that names no
//! transfer syntax gets explicit VR little endian, PS3.18's default, where the instance is
//! uncompressed (one a scanner sent by DIMSE in implicit VR or deflated is re-encoded);
//! `transfer-syntax=*` gets every instance exactly as stored, and a named uncompressed
//! syntax is served by re-encoding between uncompressed syntaxes. Compressed instances are
//! never re-encoded.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use serde_json::{Value, json};

use super::media::{MediaType, parse_accept};
use super::{base_url, path_uid};
use crate::api::extract::Actor;
use crate::api::{ApiError, AppState};
use crate::dicom::transfer_syntax::{EXPLICIT_VR_LITTLE_ENDIAN, can_transcode, transcode};
use crate::storage::audit::Outcome;
use crate::storage::index::{self, StoredInstance};

/// How the response is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packaging {
    /// `multipart/related; type="application/dicom"`, one part per instance.
    Multipart,
    /// A bare `application/dicom` body (one instance only).
    Single,
}

/// Which transfer syntax the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Syntax {
    /// No `transfer-syntax` parameter: explicit VR little endian where the instance is
    /// uncompressed, else as stored.
    Default,
    /// `transfer-syntax=*`: as stored.
    AsStored,
    /// One named syntax, which every instance is stored in or can be re-encoded to.
    Named(String),
}

impl Syntax {
    /// The syntax `stored` is served in.
    fn served<'a>(&'a self, stored: &'a str) -> &'a str {
        match self {
            Syntax::Default if can_transcode(stored, EXPLICIT_VR_LITTLE_ENDIAN) => EXPLICIT_VR_LITTLE_ENDIAN,
            Syntax::Default | Syntax::AsStored => stored,
            Syntax::Named(wanted) => wanted,
        }
    }
}

/// An instance's bytes in the syntax the client asked for.
async fn served_bytes(
    blobs: &crate::blobs::BlobStore,
    instance: &StoredInstance,
    syntax: &Syntax,
) -> Result<Bytes, ApiError> {
    let bytes = blobs.get(&instance.blob_key).await.map_err(|e| ApiError::Internal(e.into()))?;
    let target = syntax.served(&instance.transfer_syntax_uid);
    if target == instance.transfer_syntax_uid {
        return Ok(bytes);
    }
    let target = target.to_owned();
    tokio::task::spawn_blocking(move || transcode(bytes, &target))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(e.into()))
}

/// The UIDs of a retrieve request, validated.
struct Target {
    study: String,
    series: Option<String>,
    instance: Option<String>,
}

impl Target {
    fn parse(study: &str, series: Option<&str>, instance: Option<&str>) -> Result<Self, ApiError> {
        Ok(Target {
            study: path_uid("study UID", study)?.to_string(),
            series: series.map(|s| path_uid("series UID", s)).transpose()?.map(|u| u.to_string()),
            instance: instance.map(|i| path_uid("SOP instance UID", i)).transpose()?.map(|u| u.to_string()),
        })
    }

    fn resource(&self) -> String {
        let mut path = format!("/dicomweb/studies/{}", self.study);
        if let Some(series) = &self.series {
            path.push_str(&format!("/series/{series}"));
        }
        if let Some(instance) = &self.instance {
            path.push_str(&format!("/instances/{instance}"));
        }
        path
    }
}

pub async fn study(
    state: State<AppState>,
    actor: Actor,
    Path(study): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    retrieve(state, actor, Target::parse(&study, None, None)?, headers).await
}

pub async fn series(
    state: State<AppState>,
    actor: Actor,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    retrieve(state, actor, Target::parse(&study, Some(&series), None)?, headers).await
}

pub async fn instance(
    state: State<AppState>,
    actor: Actor,
    Path((study, series, instance)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    retrieve(state, actor, Target::parse(&study, Some(&series), Some(&instance))?, headers).await
}

pub async fn study_metadata(
    state: State<AppState>,
    actor: Actor,
    Path(study): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    metadata(state, actor, Target::parse(&study, None, None)?, headers).await
}

pub async fn series_metadata(
    state: State<AppState>,
    actor: Actor,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    metadata(state, actor, Target::parse(&study, Some(&series), None)?, headers).await
}

pub async fn instance_metadata(
    state: State<AppState>,
    actor: Actor,
    Path((study, series, instance)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    metadata(state, actor, Target::parse(&study, Some(&series), Some(&instance))?, headers).await
}

/// Audits an access to `target`; 404 when nothing matched.
async fn audit_access(
    state: &AppState,
    actor: &Actor,
    target: &Target,
    action: &str,
    found: bool,
) -> Result<(), ApiError> {
    let patient = if found { index::study_patient(&state.db, &target.study).await? } else { None };
    let outcome = if found { Outcome::Success } else { Outcome::Failure };
    actor.audit(&state.db, action, &target.resource(), patient.as_ref(), outcome).await?;
    if found { Ok(()) } else { Err(ApiError::NotFound("no stored instance matches these UIDs".into())) }
}

/// Finds the instances of a target, 404 when there are none; audits the access.
async fn located(
    state: &AppState,
    actor: &Actor,
    target: &Target,
    action: &str,
) -> Result<Vec<StoredInstance>, ApiError> {
    let instances =
        index::instances_in(&state.db, &target.study, target.series.as_deref(), target.instance.as_deref()).await?;
    audit_access(state, actor, target, action, !instances.is_empty()).await?;
    Ok(instances)
}

async fn retrieve(
    State(state): State<AppState>,
    actor: Actor,
    target: Target,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let instances = located(&state, &actor, &target, "dicom.retrieve").await?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (packaging, syntax) = negotiate(accept, &instances, target.instance.is_some())?;
    if packaging == Packaging::Single {
        let only = &instances[0];
        let bytes = served_bytes(&state.blobs, only, &syntax).await?;
        let content_type = format!("application/dicom; transfer-syntax={}", syntax.served(&only.transfer_syntax_uid));
        return Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response());
    }
    let boundary = format!("petal-{}", uuid::Uuid::new_v4().simple());
    let content_type = format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
    let blobs = state.blobs.clone();
    let closing = Bytes::from(format!("--{boundary}--\r\n"));
    let parts = futures::stream::iter(instances)
        .then(move |instance| {
            let blobs = blobs.clone();
            let boundary = boundary.clone();
            let syntax = syntax.clone();
            async move {
                let bytes = served_bytes(&blobs, &instance, &syntax).await.map_err(|e| {
                    tracing::error!(error = %e, "a stored instance could not be read during a retrieve");
                    std::io::Error::other(e.to_string())
                })?;
                let head = format!(
                    "--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={}\r\nContent-Length: {}\r\n\r\n",
                    syntax.served(&instance.transfer_syntax_uid),
                    bytes.len()
                );
                let mut part = BytesMut::with_capacity(head.len() + bytes.len() + 2);
                part.put_slice(head.as_bytes());
                part.put_slice(&bytes);
                part.put_slice(b"\r\n");
                Ok::<Bytes, std::io::Error>(part.freeze())
            }
        })
        .chain(futures::stream::once(async move { Ok(closing) }));
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(parts)).into_response())
}

/// Chooses how to package a retrieve, and in which syntax, from the `Accept` header, or 406.
fn negotiate(
    accept: Option<&str>,
    instances: &[StoredInstance],
    single_allowed: bool,
) -> Result<(Packaging, Syntax), ApiError> {
    let syntax_of = |media: &MediaType| match media.param("transfer-syntax") {
        None => Some(Syntax::Default),
        Some("*") => Some(Syntax::AsStored),
        Some(wanted) => instances
            .iter()
            .all(|i| can_transcode(&i.transfer_syntax_uid, wanted))
            .then(|| Syntax::Named(wanted.to_owned())),
    };
    for media in parse_accept(accept) {
        let found = match media.essence.as_str() {
            "*/*" | "multipart/*" => Some((Packaging::Multipart, Syntax::Default)),
            "multipart/related" => {
                let part = media.part_type();
                let dicom = part.as_deref().is_none_or(|t| t == "application/dicom" || t == "*/*");
                if dicom { syntax_of(&media).map(|s| (Packaging::Multipart, s)) } else { None }
            }
            "application/dicom" if single_allowed => syntax_of(&media).map(|s| (Packaging::Single, s)),
            "application/*" if single_allowed => Some((Packaging::Single, Syntax::Default)),
            _ => None,
        };
        if let Some(found) = found {
            return Ok(found);
        }
    }
    let stored: Vec<&str> = instances.iter().map(|i| i.transfer_syntax_uid.as_str()).collect();
    Err(ApiError::NotAcceptable(format!(
        "petal returns instances as stored (transfer syntax {}) or re-encoded between uncompressed syntaxes, as \
         multipart/related; type=\"application/dicom\"{}; ask for one of those or transfer-syntax=*",
        stored.first().copied().unwrap_or_default(),
        if single_allowed { " or application/dicom" } else { "" }
    )))
}

async fn metadata(
    State(state): State<AppState>,
    actor: Actor,
    target: Target,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accept = parse_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    if !accept
        .iter()
        .any(|m| matches!(m.essence.as_str(), "application/dicom+json" | "application/json" | "application/*" | "*/*"))
    {
        return Err(ApiError::NotAcceptable("metadata is served as application/dicom+json".into()));
    }
    let rows =
        index::metadata_in(&state.db, &target.study, target.series.as_deref(), target.instance.as_deref()).await?;
    audit_access(&state, &actor, &target, "dicom.metadata", !rows.is_empty()).await?;
    let base = base_url(&headers);
    let mut out = Vec::with_capacity(rows.len());
    for (series, instance, text) in rows {
        let mut dataset: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap_or_default();
        // Pixel data is served through the frames resource, all frames in one request.
        let frames = dataset
            .get("00280008")
            .and_then(|e| {
                e["Value"][0].as_str().map(str::to_owned).or_else(|| e["Value"][0].as_i64().map(|n| n.to_string()))
            })
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let list = (1..=frames).map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        let uri = format!("{base}/studies/{}/series/{series}/instances/{instance}/frames/{list}", target.study);
        dataset.insert("7FE00010".into(), json!({ "vr": "OW", "BulkDataURI": uri }));
        out.push(Value::Object(dataset));
    }
    Ok(([(header::CONTENT_TYPE, "application/dicom+json")], Value::Array(out).to_string()).into_response())
}

/// `DELETE /dicomweb/studies/{study}` (admin): removes the study's index rows, then its blobs.
pub async fn delete_study(
    State(state): State<AppState>,
    actor: Actor,
    Path(study): Path<String>,
) -> Result<StatusCode, ApiError> {
    let study = path_uid("study UID", &study)?.to_string();
    let resource = format!("/dicomweb/studies/{study}");
    let patient = index::study_patient(&state.db, &study).await?;
    let Some(keys) = index::delete_study(&state.db, &study).await? else {
        actor.audit(&state.db, "dicom.delete", &resource, None, Outcome::Failure).await?;
        return Err(ApiError::NotFound("no study has this UID".into()));
    };
    actor.audit(&state.db, "dicom.delete", &resource, patient.as_ref(), Outcome::Success).await?;
    // The index no longer names these blobs; a blob left behind by a failure here is an
    // orphan, never a dangling index row.
    for key in keys {
        if let Err(err) = state.blobs.delete(&key).await {
            tracing::warn!(error = %err, "a deleted study's blob could not be removed");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
