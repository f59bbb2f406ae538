//! STOW-RS: `POST /dicomweb/studies[/{study}]` (PS3.18 §10.5).
//!
//! The body is read part by part as it arrives. Parts are gathered in batches of up to 8
//! instances or 2 MiB; each batch is validated, written to the blob store and indexed in one
//! transaction before more is read. The response lists every stored instance
//! (ReferencedSOPSequence) and every failure (FailedSOPSequence) in DICOM JSON, or in DICOM
//! XML when the client asks for it.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dicom_dictionary_std::tags;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::media::{MediaType, parse_accept};
use super::{base_url, path_uid};
use crate::api::extract::Actor;
use crate::api::{ApiError, AppState};
use crate::dicom::json::{attribute, tag_key};
use crate::dicom::multipart::{MultipartError, MultipartReader};
use crate::dicom::{InstanceError, Uid};
use crate::ingest::{IngestError, Origin, Receipt, Stored};
use crate::storage::audit::Outcome;
use crate::storage::index;

/// PS3.18 failure reasons (FailureReason, 0008,1197).
mod reason {
    /// Processing failure: used for a study UID that differs from the path.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// SOP class not supported: not PET.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Out of resources: the blob store or database failed.
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Data set does not match SOP class: required attributes missing or invalid.
    pub const DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// Cannot understand: not DICOM, or a part of another media type.
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Warning: elements discarded. The instance was stored before with other content;
    /// the first copy is kept and this one discarded.
    pub const ELEMENTS_DISCARDED: u16 = 0xB006;
}

pub async fn store_any(State(state): State<AppState>, actor: Actor, headers: HeaderMap, body: Body) -> Response {
    stow(&state, &actor, &headers, None, body).await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn store_in_study(
    State(state): State<AppState>,
    actor: Actor,
    Path(study): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = match path_uid("study UID", &study) {
        Ok(study) => stow(&state, &actor, &headers, Some(study), body).await,
        Err(err) => Err(err),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// What the request body holds.
enum Payload {
    /// `multipart/related; type="application/dicom"` with this boundary.
    Multipart(String),
    /// A single `application/dicom` instance.
    Single,
}

fn payload_of(headers: &HeaderMap) -> Result<Payload, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        ApiError::UnsupportedMediaType("send `Content-Type: multipart/related; type=\"application/dicom\"`".into())
    })?;
    let media = MediaType::parse(content_type)
        .ok_or_else(|| ApiError::UnsupportedMediaType(format!("`{content_type}` is not a media type")))?;
    match media.essence.as_str() {
        "application/dicom" => Ok(Payload::Single),
        "multipart/related" => {
            let part_type = media.part_type();
            if part_type.as_deref().is_some_and(|t| t != "application/dicom") {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "petal stores DICOM instances as `application/dicom` parts, not `{}`",
                    part_type.unwrap_or_default()
                )));
            }
            let boundary = media
                .param("boundary")
                .filter(|b| !b.is_empty())
                .ok_or_else(|| ApiError::BadRequest("the multipart Content-Type has no boundary parameter".into()))?;
            Ok(Payload::Multipart(boundary.to_owned()))
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "`{other}` cannot be stored: send `multipart/related; type=\"application/dicom\"`"
        ))),
    }
}

/// Whether the client wants the response as DICOM XML; 406 when it accepts neither form.
fn wants_xml(headers: &HeaderMap) -> Result<bool, ApiError> {
    let accept = parse_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    for range in &accept {
        match range.essence.as_str() {
            "application/dicom+xml" => return Ok(true),
            "application/dicom+json" | "application/json" | "application/*" | "*/*" => return Ok(false),
            _ => {}
        }
    }
    Err(ApiError::NotAcceptable("STOW-RS answers in application/dicom+json or application/dicom+xml".into()))
}

async fn stow(
    state: &AppState,
    actor: &Actor,
    headers: &HeaderMap,
    study: Option<Uid>,
    body: Body,
) -> Result<Response, ApiError> {
    let xml = wants_xml(headers)?;
    let payload = payload_of(headers)?;
    let limit = state.upload_body_limit;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(format!("the body is larger than the limit of {limit} bytes")));
    }
    let received = Origin::Received { study: study.as_ref() };
    let mut receipts = Vec::new();
    match payload {
        Payload::Single => {
            let bytes = read_whole(body, limit).await?;
            let receipt = crate::jobs::denoise::completion::store_and_note(
                &state.db,
                &state.blobs,
                bytes,
                received,
                &state.series_rules,
            )
            .await;
            receipts.push(retry_later(receipt)?);
        }
        Payload::Multipart(boundary) => {
            let mut reader = MultipartReader::new(body.into_data_stream(), &boundary, limit);
            let mut batch = Batch::default();
            while let Some(part) = reader.next_part().await.map_err(multipart_error)? {
                match part.header("content-type").and_then(MediaType::parse) {
                    Some(media) if media.essence != "application/dicom" => {
                        // Receipts keep the parts' order: what is batched goes first.
                        batch.flush(state, received, &mut receipts).await?;
                        receipts.push(Receipt {
                            sop_class_uid: None,
                            sop_instance_uid: None,
                            study_uid: None,
                            series_uid: None,
                            result: Err(IngestError::Instance(InstanceError::Unreadable(format!(
                                "a part of type `{}` is not an application/dicom instance",
                                media.essence
                            )))),
                        });
                    }
                    _ => {
                        batch.bytes += part.body.len();
                        batch.parts.push(part.body);
                        if batch.is_full() {
                            batch.flush(state, received, &mut receipts).await?;
                        }
                    }
                }
            }
            batch.flush(state, received, &mut receipts).await?;
        }
    }
    if receipts.is_empty() {
        return Err(ApiError::BadRequest("the request holds no instances".into()));
    }
    audit_studies(state, actor, &receipts).await?;
    Ok(respond(&receipts, &base_url(headers), study.as_ref(), xml))
}

/// Parts read but not yet stored: they are indexed together, one transaction per batch, and
/// stored before the next part is read once the batch is full, so memory stays bounded.
#[derive(Default)]
struct Batch {
    parts: Vec<Bytes>,
    bytes: usize,
}

impl Batch {
    /// Instances per index transaction.
    const MAX_PARTS: usize = 8;
    /// Bytes held before the batch is stored (a large instance is stored alone).
    const MAX_BYTES: usize = 2 << 20;

    fn is_full(&self) -> bool {
        self.parts.len() >= Self::MAX_PARTS || self.bytes >= Self::MAX_BYTES
    }

    /// Stores the batch and appends its receipts; an unreachable database ends the request.
    async fn flush(
        &mut self,
        state: &AppState,
        origin: Origin<'_>,
        receipts: &mut Vec<Receipt>,
    ) -> Result<(), ApiError> {
        if self.parts.is_empty() {
            return Ok(());
        }
        let parts = std::mem::take(&mut self.parts);
        self.bytes = 0;
        let stored = crate::jobs::denoise::completion::store_and_note_batch(
            &state.db,
            &state.blobs,
            parts,
            origin,
            &state.series_rules,
        )
        .await;
        for receipt in stored {
            receipts.push(retry_later(receipt)?);
        }
        Ok(())
    }
}

/// An instance that could not be stored because the database is unreachable ends the
/// request with 503 and Retry-After, so the sender retries it; re-sending what was already
/// stored is harmless (STOW-RS is idempotent by SOP Instance UID).
fn retry_later(receipt: Receipt) -> Result<Receipt, ApiError> {
    let unavailable = matches!(&receipt.result, Err(IngestError::Index(error)) if error.is_unavailable());
    match receipt.result {
        Err(IngestError::Index(error)) if unavailable => Err(ApiError::Storage(error)),
        result => Ok(Receipt { result, ..receipt }),
    }
}

async fn read_whole(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the request body failed: {e}")))?;
        if (buffer.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::PayloadTooLarge(format!("the body is larger than the limit of {limit} bytes")));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

fn multipart_error(err: MultipartError) -> ApiError {
    match err {
        MultipartError::TooLarge(_) => ApiError::PayloadTooLarge(err.to_string()),
        MultipartError::Malformed(_) | MultipartError::Body(_) => ApiError::BadRequest(err.to_string()),
    }
}

/// One audit event per study the request touched.
async fn audit_studies(state: &AppState, actor: &Actor, receipts: &[Receipt]) -> Result<(), ApiError> {
    let studies: BTreeSet<&Uid> = receipts.iter().filter_map(|r| r.study_uid.as_ref()).collect();
    for study in studies {
        let stored = receipts.iter().any(|r| r.study_uid.as_ref() == Some(study) && r.result.is_ok());
        let patient_key = index::study_patient(&state.db, study.as_str()).await?;
        let outcome = if stored { Outcome::Success } else { Outcome::Failure };
        let resource = format!("/dicomweb/studies/{study}");
        actor.audit(&state.db, "dicom.store", &resource, patient_key.as_ref(), outcome).await?;
    }
    if receipts.iter().any(|r| r.study_uid.is_none()) {
        actor.audit(&state.db, "dicom.store", "/dicomweb/studies", None, Outcome::Failure).await?;
    }
    Ok(())
}

fn failure_reason(err: &IngestError) -> u16 {
    match err {
        IngestError::Instance(InstanceError::NotPet(_)) => reason::SOP_CLASS_NOT_SUPPORTED,
        IngestError::Instance(InstanceError::Unreadable(_) | InstanceError::Undecodable { .. }) => {
            reason::CANNOT_UNDERSTAND
        }
        IngestError::Instance(InstanceError::MissingAttribute { .. } | InstanceError::BadUid { .. }) => {
            reason::DOES_NOT_MATCH_SOP_CLASS
        }
        IngestError::StudyMismatch { .. } | IngestError::StudyGone(_) => reason::PROCESSING_FAILURE,
        IngestError::Blob(_) | IngestError::Index(_) => reason::OUT_OF_RESOURCES,
    }
}

/// Builds the PS3.18 STOW-RS response: 200 all stored, 202 some failed or warned, 409 none stored.
fn respond(receipts: &[Receipt], base: &str, path_study: Option<&Uid>, xml: bool) -> Response {
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    let mut studies = BTreeSet::new();
    for receipt in receipts {
        let class = receipt.sop_class_uid.as_deref();
        let instance = receipt.sop_instance_uid.as_deref();
        let mut item = Map::new();
        item.insert(tag_key(tags::REFERENCED_SOP_CLASS_UID), attribute("UI", &class.into_iter().collect::<Vec<_>>()));
        item.insert(
            tag_key(tags::REFERENCED_SOP_INSTANCE_UID),
            attribute("UI", &instance.into_iter().collect::<Vec<_>>()),
        );
        match &receipt.result {
            Ok(stored) => {
                if let (Some(study), Some(instance)) = (&receipt.study_uid, instance) {
                    studies.insert(study.clone());
                    let url = format!("{base}/studies/{study}/series/{}/instances/{instance}", series_of(receipt));
                    item.insert(tag_key(tags::RETRIEVE_URL), attribute("UR", &[&url]));
                }
                if *stored == Stored::Conflicting {
                    item.insert(
                        tag_key(tags::WARNING_REASON),
                        json!({"vr": "US", "Value": [reason::ELEMENTS_DISCARDED]}),
                    );
                    warnings.push(
                        "an instance was already stored with different content; the first copy is kept".to_owned(),
                    );
                }
                referenced.push(Value::Object(item));
            }
            Err(err) => {
                if matches!(err, IngestError::Blob(_) | IngestError::Index(_)) {
                    tracing::error!(error = %err, "storing an instance failed");
                }
                item.insert(tag_key(tags::FAILURE_REASON), json!({"vr": "US", "Value": [failure_reason(err)]}));
                warnings.push(err.to_string());
                failed.push(Value::Object(item));
            }
        }
    }
    let mut dataset = Map::new();
    let study_for_url =
        path_study.cloned().or_else(|| (studies.len() == 1).then(|| studies.iter().next().cloned()).flatten());
    if let Some(study) = study_for_url {
        dataset.insert(tag_key(tags::RETRIEVE_URL), attribute("UR", &[&format!("{base}/studies/{study}")]));
    }
    if !failed.is_empty() {
        dataset.insert(tag_key(tags::FAILED_SOP_SEQUENCE), json!({"vr": "SQ", "Value": failed}));
    }
    if !referenced.is_empty() {
        dataset.insert(tag_key(tags::REFERENCED_SOP_SEQUENCE), json!({"vr": "SQ", "Value": referenced}));
    }
    let status = if referenced.is_empty() {
        StatusCode::CONFLICT
    } else if warnings.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let (content_type, body) = if xml {
        ("application/dicom+xml", crate::dicom::xml::native_model(&dataset))
    } else {
        ("application/dicom+json", Value::Object(dataset).to_string())
    };
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    let distinct: BTreeSet<String> = warnings.into_iter().collect();
    for warning in distinct.into_iter().take(10) {
        let text = format!("299 petal \"{}\"", warning.replace(['"', '\\'], "'"));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// The series UID of a stored instance, for its RetrieveURL.
fn series_of(receipt: &Receipt) -> &str {
    receipt.series_uid.as_ref().map(Uid::as_str).unwrap_or_default()
}
