//! `/api/v1/series/{series_uid}`: what petal did with a series (state from receiving to
//! done, or why it is not denoised; its derived series; the model version used; timings),
//! and `POST …/denoise` for admins to run it again (e.g. after a new model version).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::extract::{Actor, AuditedAction, Json};
use super::{ApiError, AppState};
use crate::domain::{DenoiseStrength, ForwardState, Forwarded, JobId, ModelVersionId, SeriesState};
use crate::jobs::denoise::completion::{DenoisePayload, Enqueued, enqueue_denoise};
use crate::storage::audit::Outcome;
use crate::storage::series_processing::{self, SeriesProcessing};
use crate::storage::{destinations, forwards, models};

/// The model version a series was denoised with.
#[derive(Debug, Serialize)]
pub struct ModelUsed {
    pub id: ModelVersionId,
    pub name: String,
    pub device_uid: String,
}

/// A derived series of this one.
#[derive(Debug, Serialize)]
pub struct DerivedSeries {
    pub series_uid: String,
    pub superseded_by: Option<String>,
    pub created_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct SeriesStatus {
    #[serde(flatten)]
    pub processing: SeriesProcessing,
    /// JSON of the normalisation, parsed.
    pub normalisation_used: Option<serde_json::Value>,
    pub model_version: Option<ModelUsed>,
    /// Every derived series made from this one, oldest first; the last is current.
    pub derived_series: Vec<DerivedSeries>,
    /// Seconds from completion to the job's start, when both are known.
    pub queue_wait_seconds: Option<f64>,
    /// Where this series and its derived series stand with each destination.
    pub forwards: Vec<Forward>,
}

/// One series' delivery to one destination.
#[derive(Debug, Serialize)]
pub struct Forward {
    pub destination: String,
    /// The series sent: this one's current derived series, or this one (a source).
    pub series_uid: String,
    pub state: ForwardState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_ms: Option<i64>,
}

/// The forward states of a series and of its derived series.
async fn forwards_of(state: &AppState, series_uid: &str, derived: &[DerivedSeries]) -> Result<Vec<Forward>, ApiError> {
    let mut uids = vec![series_uid];
    uids.extend(derived.iter().map(|d| d.series_uid.as_str()));
    Ok(forwards::of_series(&state.db, &uids)
        .await?
        .into_iter()
        .map(|f| Forward {
            destination: f.destination,
            series_uid: f.series_uid,
            state: f.state,
            attempts: f.attempts,
            last_error: f.last_error,
            sent_ms: f.sent_ms,
        })
        .collect())
}

async fn find(state: &AppState, actor: &Actor, action: &str, series_uid: &str) -> Result<SeriesProcessing, ApiError> {
    let resource = format!("/api/v1/series/{series_uid}");
    match series_processing::get(&state.db, series_uid).await? {
        Some(found) => Ok(found),
        None => {
            actor.audit(&state.db, action, &resource, None, Outcome::Failure).await?;
            Err(ApiError::NotFound("petal has received no instance of this series".to_owned()))
        }
    }
}

pub async fn get(
    State(state): State<AppState>,
    actor: Actor,
    Path(series_uid): Path<String>,
) -> Result<axum::Json<SeriesStatus>, ApiError> {
    let processing = find(&state, &actor, "series.read", &series_uid).await?;
    let model_version = match processing.model_version_id {
        Some(id) => {
            models::get(&state.db, id).await?.map(|v| ModelUsed { id: v.id, name: v.name, device_uid: v.device_uid })
        }
        None => None,
    };
    let derived_series: Vec<DerivedSeries> = series_processing::derived_from(&state.db, &series_uid)
        .await?
        .into_iter()
        .map(|d| DerivedSeries {
            series_uid: d.series_uid,
            superseded_by: d.superseded_by,
            created_ms: d.first_instance_ms,
        })
        .collect();
    let forwards = forwards_of(&state, &series_uid, &derived_series).await?;
    let queue_wait_seconds = match (processing.completed_ms, processing.started_ms) {
        (Some(completed), Some(started)) if started >= completed => Some((started - completed) as f64 / 1000.0),
        _ => None,
    };
    let normalisation_used = processing.normalisation.as_deref().and_then(|n| serde_json::from_str(n).ok());
    actor
        .audit(
            &state.db,
            "series.read",
            &format!("/api/v1/series/{series_uid}"),
            Some(&processing.patient_key),
            Outcome::Success,
        )
        .await?;
    Ok(axum::Json(SeriesStatus {
        processing,
        normalisation_used,
        model_version,
        derived_series,
        queue_wait_seconds,
        forwards,
    }))
}

/// The optional body of `POST …/denoise`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenoiseRequest {
    /// `standard`, `lesion-preserving`, or a number in (0, 1]; the worker's configured
    /// strength when left out.
    #[serde(default)]
    pub strength: Option<DenoiseStrength>,
}

#[derive(Debug, Serialize)]
pub struct DenoiseAccepted {
    pub series_uid: String,
    pub job_id: JobId,
    pub state: SeriesState,
}

pub async fn denoise(
    State(state): State<AppState>,
    actor: Actor,
    Path(series_uid): Path<String>,
    body: Option<Json<DenoiseRequest>>,
) -> Result<(StatusCode, axum::Json<DenoiseAccepted>), ApiError> {
    let strength = body.and_then(|Json(request)| request.strength);
    let processing = find(&state, &actor, "series.denoise", &series_uid).await?;
    let resource = format!("/api/v1/series/{series_uid}/denoise");
    let detail = strength.map(|strength| format!("strength={strength}"));
    let audited = AuditedAction {
        action: "series.denoise",
        resource: &resource,
        patient_key: Some(&processing.patient_key),
        detail: detail.as_deref(),
    };
    let refuse = |error: ApiError| async {
        actor.audit_detailed(&state.db, audited, Outcome::Failure).await?;
        Err::<(StatusCode, axum::Json<DenoiseAccepted>), ApiError>(error)
    };
    match processing.state {
        SeriesState::NotDenoised => {
            let reason = processing.reason.clone().unwrap_or_default();
            return refuse(ApiError::Unprocessable(format!("this series is not denoised: {reason}"))).await;
        }
        SeriesState::Receiving => {
            let expected = processing.expected_instances.map_or("an unknown number".to_owned(), |n| n.to_string());
            return refuse(ApiError::Conflict(format!(
                "the series is still arriving ({} of {expected} instances); it is denoised once complete",
                processing.received_instances
            )))
            .await;
        }
        _ => {}
    }
    let request = DenoisePayload { strength, ..DenoisePayload::new(&series_uid, &actor.caller.name) };
    match enqueue_denoise(&state.db, &request, true).await? {
        Enqueued::Queued(job_id) => {
            actor.audit_detailed(&state.db, audited, Outcome::Success).await?;
            Ok((StatusCode::ACCEPTED, axum::Json(DenoiseAccepted { series_uid, job_id, state: SeriesState::Queued })))
        }
        Enqueued::AlreadyActive(job_id) => {
            refuse(ApiError::Conflict(format!("a denoise job for this series is already queued or running: {job_id}")))
                .await
        }
        Enqueued::NotEligible => {
            refuse(ApiError::Conflict(
                "the series is already queued or being denoised; try again once it is done".into(),
            ))
            .await
        }
    }
}

/// What `POST …/forward` queued.
#[derive(Debug, Serialize)]
pub struct ForwardAccepted {
    /// The derived series sent.
    pub series_uid: String,
    /// The destinations it was queued for.
    pub destinations: Vec<String>,
}

/// `POST /api/v1/series/{uid}/forward` (admin): sends the series' current derived series
/// (and the series itself, where a destination receives sources) to every destination again.
pub async fn forward(
    State(state): State<AppState>,
    actor: Actor,
    Path(series_uid): Path<String>,
) -> Result<(StatusCode, axum::Json<ForwardAccepted>), ApiError> {
    let processing = find(&state, &actor, "series.forward", &series_uid).await?;
    let resource = format!("/api/v1/series/{series_uid}/forward");
    let current = series_processing::derived_from(&state.db, &series_uid)
        .await?
        .into_iter()
        .rfind(|d| d.superseded_by.is_none())
        .map(|d| d.series_uid);
    let Some(derived_uid) = current else {
        actor.audit(&state.db, "series.forward", &resource, Some(&processing.patient_key), Outcome::Failure).await?;
        return Err(ApiError::Conflict("the series has no derived series yet: it is forwarded once denoised".into()));
    };
    let mut queued = Vec::new();
    for destination in destinations::list(&state.db).await? {
        let study = &processing.study_uid;
        if destination.forwards_derived() {
            crate::jobs::forward::queue(&state.db, &state.forwarding, study, &derived_uid, &destination.name).await?;
        }
        if destination.forward.contains(&Forwarded::Source) {
            crate::jobs::forward::queue(&state.db, &state.forwarding, study, &series_uid, &destination.name).await?;
        }
        queued.push(destination.name);
    }
    actor.audit(&state.db, "series.forward", &resource, Some(&processing.patient_key), Outcome::Success).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(ForwardAccepted { series_uid: derived_uid, destinations: queued })))
}

/// SUV of one stored slice, from its own header (SUVbw: body weight, decayed dose).
#[derive(Debug, Serialize)]
pub struct SliceSuv {
    pub sop_instance_uid: String,
    pub series_uid: String,
    pub suv_max: f64,
    pub suv_mean: f64,
}

pub async fn instance_suv(
    State(state): State<AppState>,
    actor: Actor,
    Path(sop_instance_uid): Path<String>,
) -> Result<axum::Json<SliceSuv>, ApiError> {
    let resource = format!("/api/v1/instances/{sop_instance_uid}/suv");
    let Some(stored) = crate::storage::index::find_instance(&state.db, &sop_instance_uid).await? else {
        return Err(ApiError::NotFound("no instance has this SOP Instance UID".into()));
    };
    let patient = crate::storage::index::study_patient(&state.db, &stored.study_uid).await?;
    let bytes = state.blobs.get(&stored.blob_key).await.map_err(|e| ApiError::Internal(e.into()))?;
    let slice = crate::dicom::volume::Slice::from_part10(&bytes)
        .map_err(|e| ApiError::Unprocessable(format!("the instance has no image petal can read: {e}")))?;
    let Some(factor) = slice.suv_factor else {
        actor.audit(&state.db, "instance.suv", &resource, patient.as_ref(), Outcome::Failure).await?;
        return Err(ApiError::Unprocessable(
            "no SUV: the header lacks Units BQML, the patient's weight, or the dose and its times".into(),
        ));
    };
    let suv: Vec<f64> = slice.values.iter().map(|v| f64::from(*v) * factor).collect();
    let suv_max = suv.iter().copied().fold(f64::MIN, f64::max);
    let suv_mean = suv.iter().sum::<f64>() / suv.len().max(1) as f64;
    actor.audit(&state.db, "instance.suv", &resource, patient.as_ref(), Outcome::Success).await?;
    Ok(axum::Json(SliceSuv { sop_instance_uid, series_uid: stored.series_uid, suv_max, suv_mean }))
}
