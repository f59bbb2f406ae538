//! Which model a patient's work uses: their active version from the registry, or the base
//! model (every patient's version 0) that this process loaded. Denoise jobs denoise with
//! it; learning rounds start from it.

use std::sync::Arc;

use anyhow::Context;

use crate::domain::{ModelVersionId, PatientKey};
use crate::inference::InferenceContext;
use crate::science::model::directory::StoredModel;
use crate::storage::{Database, models};

/// A model and its registry identity.
pub struct ActiveModel {
    pub model: Arc<StoredModel>,
    /// `None` only for a base model the registry could not record.
    pub version_id: Option<ModelVersionId>,
    pub device_uid: String,
}

/// The patient's active version, or the base model when none is active.
pub async fn active_model(
    db: &Database,
    inference: &InferenceContext,
    patient_key: &PatientKey,
) -> anyhow::Result<ActiveModel> {
    if let Some((version, model)) = models::load_active(db, patient_key).await? {
        return Ok(ActiveModel {
            model: Arc::new(model),
            version_id: Some(version.id),
            device_uid: version.device_uid,
        });
    }
    let model = inference.base_model.clone().context(
        "the base model is not loaded in this worker (see /readyz): set PETAL_BASE_MODEL to a model directory",
    )?;
    let version_id = inference.base_version;
    let device_uid = match version_id {
        Some(id) => models::get(db, id).await?.map(|v| v.device_uid),
        None => None,
    }
    .unwrap_or_else(|| models::device_uid(&model.sha256, None, None));
    Ok(ActiveModel { model, version_id, device_uid })
}
