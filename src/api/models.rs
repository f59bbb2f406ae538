//! The model registry for readers and admins: a patient's versions and which is active,
//! one version with its report, its weights for admins to export, and activation
//! (rollback or roll-forward), all audited. Version 0 of every patient is the base model.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

use super::extract::Actor;
use super::{ApiError, AppState};
use crate::domain::{ModelVersionId, PatientKey, RoundState};
use crate::storage::audit::Outcome;
use crate::storage::models::{self, ModelVersion};
use crate::storage::patients;

#[derive(Debug, Serialize)]
pub struct PatientModels {
    pub patient_key: PatientKey,
    /// The active version's id; 0 for the base model.
    pub active_version: i64,
    /// The base model (version 0), when one is registered.
    pub base: Option<ModelVersion>,
    /// Versions made by this patient's rounds, oldest first.
    pub versions: Vec<ModelVersion>,
}

async fn require_patient(
    state: &AppState,
    actor: &Actor,
    action: &str,
    resource: &str,
    key: &PatientKey,
) -> Result<(), ApiError> {
    if patients::get(&state.db, key).await?.is_some() {
        return Ok(());
    }
    actor.audit(&state.db, action, resource, None, Outcome::Failure).await?;
    Err(ApiError::NotFound("no patient has this key".into()))
}

pub async fn for_patient(
    State(state): State<AppState>,
    actor: Actor,
    Path(patient_key): Path<PatientKey>,
) -> Result<axum::Json<PatientModels>, ApiError> {
    let resource = format!("/api/v1/patients/{patient_key}/models");
    require_patient(&state, &actor, "models.read", &resource, &patient_key).await?;
    let active_version = models::active_for_patient(&state.db, &patient_key).await?.map_or(0, ModelVersionId::get);
    let base = models::latest_base(&state.db).await?;
    let versions = models::for_patient(&state.db, &patient_key).await?;
    actor.audit(&state.db, "models.read", &resource, Some(&patient_key), Outcome::Success).await?;
    Ok(axum::Json(PatientModels { patient_key, active_version, base, versions }))
}

pub async fn get(
    State(state): State<AppState>,
    actor: Actor,
    Path(version_id): Path<ModelVersionId>,
) -> Result<axum::Json<ModelVersion>, ApiError> {
    let resource = format!("/api/v1/models/{version_id}");
    let Some(version) = models::get(&state.db, version_id).await? else {
        return Err(ApiError::NotFound("no model version has this id".into()));
    };
    if let Some(patient) = &version.patient_key {
        actor.audit(&state.db, "model.read", &resource, Some(patient), Outcome::Success).await?;
    }
    Ok(axum::Json(version))
}

/// A version's weights as stored (safetensors; its sha256 is the version's `sha256`), so a
/// physicist can check a version outside petal or judge a rejected one against data petal
/// never saw. A patient's version is fitted to their images, so every export is audited.
pub async fn weights(
    State(state): State<AppState>,
    actor: Actor,
    Path(version_id): Path<ModelVersionId>,
) -> Result<impl IntoResponse, ApiError> {
    let resource = format!("/api/v1/models/{version_id}/weights");
    let (Some(version), Some(bytes)) =
        (models::get(&state.db, version_id).await?, models::weights(&state.db, version_id).await?)
    else {
        actor.audit(&state.db, "model.export", &resource, None, Outcome::Failure).await?;
        return Err(ApiError::NotFound("no model version has this id".into()));
    };
    actor.audit(&state.db, "model.export", &resource, version.patient_key.as_ref(), Outcome::Success).await?;
    let disposition = format!("attachment; filename=\"petal-model-{version_id}.safetensors\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::ETAG, format!("\"{}\"", version.sha256)),
        ],
        bytes,
    ))
}

#[derive(Debug, Serialize)]
pub struct Activated {
    pub patient_key: PatientKey,
    pub active_version: i64,
}

pub async fn activate(
    State(state): State<AppState>,
    actor: Actor,
    Path((patient_key, version)): Path<(PatientKey, i64)>,
) -> Result<axum::Json<Activated>, ApiError> {
    let resource = format!("/api/v1/patients/{patient_key}/models/{version}/activate");
    require_patient(&state, &actor, "model.activate", &resource, &patient_key).await?;
    let refuse = |error: ApiError| async {
        actor.audit(&state.db, "model.activate", &resource, Some(&patient_key), Outcome::Failure).await?;
        Err::<axum::Json<Activated>, ApiError>(error)
    };
    let target = if version == 0 {
        None
    } else {
        match models::get(&state.db, ModelVersionId::from(version)).await? {
            None => return refuse(ApiError::NotFound("no model version has this id".into())).await,
            Some(found) if found.patient_key.as_ref().is_some_and(|p| *p != patient_key) => {
                return refuse(ApiError::Unprocessable("this version belongs to another patient".into())).await;
            }
            Some(found) if found.round_state.as_deref() == Some(RoundState::Rejected.as_str()) => {
                return refuse(ApiError::Unprocessable(
                    "this version failed its round's gate and cannot go live; see its report for the reasons".into(),
                ))
                .await;
            }
            Some(found) => Some(found.id),
        }
    };
    models::activate(&state.db, &patient_key, target, &actor.caller.name).await?;
    actor.audit(&state.db, "model.activate", &resource, Some(&patient_key), Outcome::Success).await?;
    Ok(axum::Json(Activated { patient_key, active_version: version }))
}
