//! `/api/v1/patients`: find petal's `patient_key` for a DICOM PatientID, and read a patient.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::extract::{Actor, Query};
use super::{ApiError, AppState};
use crate::domain::PatientKey;
use crate::storage::audit::Outcome;
use crate::storage::patients::{self, Patient};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientParams {
    /// DICOM PatientID (0010,0020).
    patient_id: Option<String>,
    /// IssuerOfPatientID (0010,0021); empty string for none.
    issuer: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
pub struct PatientList {
    patients: Vec<Patient>,
}

pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(params): Query<PatientParams>,
) -> Result<axum::Json<PatientList>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    let offset = params.offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) || offset < 0 {
        return Err(ApiError::BadRequest("`limit` must be 1 to 1000 and `offset` not negative".to_owned()));
    }
    let found =
        patients::list(&state.db, params.patient_id.as_deref(), params.issuer.as_deref(), limit, offset).await?;
    for patient in &found {
        actor
            .audit(&state.db, "patient.search", "/api/v1/patients", Some(&patient.patient_key), Outcome::Success)
            .await?;
    }
    Ok(axum::Json(PatientList { patients: found }))
}

pub async fn get(
    State(state): State<AppState>,
    actor: Actor,
    Path(patient_key): Path<PatientKey>,
) -> Result<axum::Json<Patient>, ApiError> {
    let resource = format!("/api/v1/patients/{patient_key}");
    match patients::get(&state.db, &patient_key).await? {
        Some(patient) => {
            actor.audit(&state.db, "patient.read", &resource, Some(&patient_key), Outcome::Success).await?;
            Ok(axum::Json(patient))
        }
        None => {
            actor.audit(&state.db, "patient.read", &resource, None, Outcome::Failure).await?;
            Err(ApiError::NotFound("no patient has this key".to_owned()))
        }
    }
}

/// Erases a patient (admin): studies, blobs, rounds and model versions. Audited.
pub async fn erase(
    State(state): State<AppState>,
    actor: Actor,
    Path(patient_key): Path<PatientKey>,
) -> Result<axum::http::StatusCode, ApiError> {
    let resource = format!("/api/v1/patients/{patient_key}");
    match patients::erase(&state.db, &patient_key, &actor.caller.name).await? {
        patients::Erasure::NotFound => {
            actor.audit(&state.db, "patient.erase", &resource, None, Outcome::Failure).await?;
            Err(ApiError::NotFound("no patient has this key".to_owned()))
        }
        patients::Erasure::RoundRunning(id) => {
            actor.audit(&state.db, "patient.erase", &resource, Some(&patient_key), Outcome::Failure).await?;
            Err(ApiError::RoundActive(id))
        }
        patients::Erasure::Erased { blob_keys } => {
            actor.audit(&state.db, "patient.erase", &resource, Some(&patient_key), Outcome::Success).await?;
            // The index no longer names these blobs; one left behind by a failure here is an
            // orphan, never a dangling index row.
            for key in blob_keys {
                if let Err(err) = state.blobs.delete(&key).await {
                    tracing::warn!(error = %err, "an erased patient's blob could not be removed");
                }
            }
            Ok(axum::http::StatusCode::NO_CONTENT)
        }
    }
}
