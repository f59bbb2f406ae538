//! Learning rounds for admins: request one for a patient, watch its progress, cancel it.
//! Every call is audited; the round itself runs as a `fine_tune` job on the shared queue.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::extract::{Actor, Json};
use super::{ApiError, AppState};
use crate::domain::{JobId, ModelVersionId, PatientKey, RoundId, RoundState};
use crate::jobs::learning::request::{RequestError, RoundRequest, request_round};
use crate::storage::audit::Outcome;
use crate::storage::patients;
use crate::storage::rounds::{self, CancelOutcome, Created, Round};

/// Where a round's pair comes from.
#[derive(Debug, Serialize)]
pub struct PairView {
    pub source: String,
    pub series_a: String,
    /// Absent for neighbour sub-sampling of one series.
    pub series_b: Option<String>,
}

/// How far a round has come.
#[derive(Debug, Serialize)]
pub struct ProgressView {
    pub step: i64,
    pub total_steps: i64,
    /// Training loss of the last reported step.
    pub loss: Option<f64>,
    /// Held-out N2N loss of the parent, then of the new network once trained.
    pub validation_loss_parent: Option<f64>,
    pub validation_loss: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub updated_ms: Option<i64>,
}

/// A round as the API shows it.
#[derive(Debug, Serialize)]
pub struct RoundView {
    pub id: RoundId,
    pub patient_key: PatientKey,
    /// queued, running, activated, rejected, cancelled or failed.
    pub state: RoundState,
    pub kind: String,
    pub pair: PairView,
    pub settings: Value,
    /// The version the round started from (the base model's id for version 0).
    pub parent_version_id: Option<ModelVersionId>,
    /// The `fine_tune` job that runs the round (see `/api/v1/jobs/{job_id}`).
    pub job_id: Option<JobId>,
    pub progress: ProgressView,
    /// The version the round made (activated or rejected).
    pub version_id: Option<ModelVersionId>,
    /// The gate's measures, limits, verdict and reasons.
    pub gate: Option<Value>,
    /// Why the round failed or was cancelled.
    pub error: Option<String>,
    pub cancel_requested_by: Option<String>,
    /// The series denoised again with the new version.
    pub redenoised_series_uid: Option<String>,
    pub requested_by: String,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

impl From<Round> for RoundView {
    fn from(round: Round) -> Self {
        let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
        RoundView {
            id: round.id,
            patient_key: round.patient_key,
            state: round.state,
            kind: round.kind,
            pair: PairView { source: round.pair_source, series_a: round.series_a, series_b: round.series_b },
            settings: parse(&round.settings),
            parent_version_id: round.parent_version_id,
            job_id: round.job_id,
            progress: ProgressView {
                step: round.step,
                total_steps: round.total_steps,
                loss: round.loss,
                validation_loss_parent: round.validation_loss_parent,
                validation_loss: round.validation_loss,
                eta_seconds: round.eta_seconds,
                updated_ms: round.progress_ms,
            },
            version_id: round.version_id,
            gate: round.gate.as_deref().map(parse),
            error: round.error,
            cancel_requested_by: round.cancel_requested_by,
            redenoised_series_uid: round.redenoised_series_uid,
            requested_by: round.requested_by,
            created_ms: round.created_ms,
            started_ms: round.started_ms,
            finished_ms: round.finished_ms,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RoundList {
    pub rounds: Vec<RoundView>,
}

pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Path(patient_key): Path<PatientKey>,
    Json(request): Json<RoundRequest>,
) -> Result<(StatusCode, axum::Json<RoundView>), ApiError> {
    let resource = format!("/api/v1/patients/{patient_key}/rounds");
    let created = request_round(&state.db, &patient_key, &request, &state.learning, &actor.caller.name).await;
    let error = match created {
        Ok(Created::Round(round)) => {
            actor.audit(&state.db, "round.create", &resource, Some(&patient_key), Outcome::Success).await?;
            return Ok((StatusCode::ACCEPTED, axum::Json(RoundView::from(*round))));
        }
        Ok(Created::AlreadyActive(id)) => ApiError::RoundActive(id),
        Err(RequestError::UnknownPatient) => {
            actor.audit(&state.db, "round.create", &resource, None, Outcome::Failure).await?;
            return Err(ApiError::NotFound("no patient has this key".into()));
        }
        Err(RequestError::Unusable(reason)) => ApiError::Unprocessable(reason),
        Err(RequestError::Settings(err)) => ApiError::Unprocessable(err.to_string()),
        Err(RequestError::Storage(err)) => ApiError::Storage(err),
    };
    actor.audit(&state.db, "round.create", &resource, Some(&patient_key), Outcome::Failure).await?;
    Err(error)
}

pub async fn for_patient(
    State(state): State<AppState>,
    actor: Actor,
    Path(patient_key): Path<PatientKey>,
) -> Result<axum::Json<RoundList>, ApiError> {
    let resource = format!("/api/v1/patients/{patient_key}/rounds");
    if patients::get(&state.db, &patient_key).await?.is_none() {
        actor.audit(&state.db, "rounds.read", &resource, None, Outcome::Failure).await?;
        return Err(ApiError::NotFound("no patient has this key".into()));
    }
    let rounds = rounds::for_patient(&state.db, &patient_key).await?;
    actor.audit(&state.db, "rounds.read", &resource, Some(&patient_key), Outcome::Success).await?;
    Ok(axum::Json(RoundList { rounds: rounds.into_iter().map(RoundView::from).collect() }))
}

pub async fn get(
    State(state): State<AppState>,
    actor: Actor,
    Path(round_id): Path<RoundId>,
) -> Result<axum::Json<RoundView>, ApiError> {
    let resource = format!("/api/v1/rounds/{round_id}");
    let Some(round) = rounds::get(&state.db, round_id).await? else {
        return Err(ApiError::NotFound("no round has this id".into()));
    };
    actor.audit(&state.db, "round.read", &resource, Some(&round.patient_key), Outcome::Success).await?;
    Ok(axum::Json(RoundView::from(round)))
}

pub async fn cancel(
    State(state): State<AppState>,
    actor: Actor,
    Path(round_id): Path<RoundId>,
) -> Result<(StatusCode, axum::Json<RoundView>), ApiError> {
    let resource = format!("/api/v1/rounds/{round_id}/cancel");
    let outcome = rounds::request_cancel(&state.db, round_id, &actor.caller.name).await?;
    let Some(round) = rounds::get(&state.db, round_id).await? else {
        actor.audit(&state.db, "round.cancel", &resource, None, Outcome::Failure).await?;
        return Err(ApiError::NotFound("no round has this id".into()));
    };
    let patient = Some(&round.patient_key);
    match outcome {
        CancelOutcome::Cancelled => {
            actor.audit(&state.db, "round.cancel", &resource, patient, Outcome::Success).await?;
            Ok((StatusCode::OK, axum::Json(RoundView::from(round))))
        }
        CancelOutcome::Requested => {
            actor.audit(&state.db, "round.cancel", &resource, patient, Outcome::Success).await?;
            Ok((StatusCode::ACCEPTED, axum::Json(RoundView::from(round))))
        }
        CancelOutcome::Finished(finished) => {
            actor.audit(&state.db, "round.cancel", &resource, patient, Outcome::Failure).await?;
            Err(ApiError::Conflict(format!("the round is already over ({finished}); nothing to cancel")))
        }
        CancelOutcome::NotFound => {
            actor.audit(&state.db, "round.cancel", &resource, None, Outcome::Failure).await?;
            Err(ApiError::NotFound("no round has this id".into()))
        }
    }
}
