//! The `model_versions` table: immutable weights with their config and sha256 (triggers
//! refuse to rewrite or delete them). Version ids are what the API, the CLI and the
//! derived series (through the DeviceUID) name.

use sha2::{Digest, Sha256};
use sqlx::FromRow;

use super::{Database, StorageError, execute, with_pool};
use crate::domain::{ModelVersionId, PatientKey, RoundId};

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    /// The base model a process loaded from its model directory.
    Base,
    /// Imported by an admin (e.g. from ONNX).
    Imported,
    /// Made by a patient's learning round.
    Round,
}

impl ModelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Imported => "imported",
            Self::Round => "round",
        }
    }
}

/// A version's description, without its weights.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ModelVersion {
    pub id: ModelVersionId,
    pub device_uid: String,
    pub name: String,
    pub source: String,
    pub sha256: String,
    /// The architecture, as the model directory's config.json.
    pub config: String,
    pub parent_id: Option<ModelVersionId>,
    pub patient_key: Option<PatientKey>,
    pub report: Option<String>,
    pub created_by: Option<String>,
    pub created_ms: i64,
    /// The round that made this version.
    pub round_id: Option<RoundId>,
    /// That round's verdict: `activated` (passed the gate) or `rejected`.
    pub round_state: Option<String>,
}

/// What a new version is made of.
#[derive(Debug, Clone)]
pub struct NewModelVersion<'a> {
    pub name: &'a str,
    pub source: ModelSource,
    pub sha256: &'a str,
    pub config: &'a str,
    pub weights: &'a [u8],
    pub parent_id: Option<ModelVersionId>,
    pub patient_key: Option<&'a PatientKey>,
    pub report: Option<&'a str>,
    pub created_by: Option<&'a str>,
}

macro_rules! select_versions {
    ($rest:literal) => {
        concat!(
            "SELECT id, device_uid, name, source, sha256, config, parent_id, patient_key, report, created_by, created_ms,
                    (SELECT r.id FROM rounds r WHERE r.version_id = model_versions.id) AS round_id,
                    (SELECT r.state FROM rounds r WHERE r.version_id = model_versions.id) AS round_state
             FROM model_versions ",
            $rest
        )
    };
}

/// The DICOM UID of a version: `2.25.` and a number derived from the content hash and the
/// lineage, so the same base weights have the same DeviceUID wherever they are loaded.
pub fn device_uid(sha256: &str, parent_id: Option<ModelVersionId>, patient_key: Option<&PatientKey>) -> String {
    lineage_uid(sha256, parent_id.map(ModelVersionId::get), patient_key.map(PatientKey::as_str))
}

/// The hash behind [`device_uid`], over the lineage as plain values, as DeviceUIDs have
/// always been derived (a version's UID must not change when petal is upgraded).
fn lineage_uid(sha256: &str, parent_id: Option<i64>, patient_key: Option<&str>) -> String {
    let digest = Sha256::digest(format!("{sha256}|{parent_id:?}|{patient_key:?}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // UUID-derived UIDs (PS3.5 B.2) carry at most 128 bits.
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

/// The statement that stores a version and returns its id; bound by [`bind_new_version!`].
pub(super) const INSERT_VERSION_SQL: &str = "INSERT INTO model_versions
         (device_uid, name, source, sha256, config, weights, parent_id, patient_key, report, created_by, created_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     RETURNING id";

/// Binds (device UID, new version, now) to [`INSERT_VERSION_SQL`], for a pool or a transaction.
macro_rules! bind_new_version {
    ($query:expr, $uid:expr, $new:expr, $now:expr) => {
        $query
            .bind($uid)
            .bind($new.name)
            .bind($new.source.as_str())
            .bind($new.sha256)
            .bind($new.config)
            .bind($new.weights)
            .bind($new.parent_id)
            .bind($new.patient_key)
            .bind($new.report)
            .bind($new.created_by)
            .bind($now)
    };
}
pub(super) use bind_new_version;

/// Points a patient at a version (binds: patient, version or NULL, who, now).
pub(super) const ACTIVATE_SQL: &str =
    "INSERT INTO patient_models (patient_key, active_version_id, activated_by, activated_ms)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (patient_key) DO UPDATE
         SET active_version_id = excluded.active_version_id, activated_by = excluded.activated_by,
             activated_ms = excluded.activated_ms";

/// The DeviceUID of the version round `round_id` made: the round is part of the lineage, so
/// two rounds that happen to end with the same weights still make two versions.
pub fn round_device_uid(
    sha256: &str,
    parent_id: Option<ModelVersionId>,
    patient_key: Option<&PatientKey>,
    round_id: RoundId,
) -> String {
    let patient_key = patient_key.map_or("", PatientKey::as_str);
    lineage_uid(&format!("{sha256}|round {round_id}"), parent_id.map(ModelVersionId::get), Some(patient_key))
}

/// Stores a new version and returns it.
pub async fn insert(db: &Database, new: &NewModelVersion<'_>) -> Result<ModelVersion, StorageError> {
    let uid = device_uid(new.sha256, new.parent_id, new.patient_key);
    let now = chrono::Utc::now().timestamp_millis();
    let id: ModelVersionId = with_pool!(db, |pool| {
        bind_new_version!(sqlx::query_scalar(INSERT_VERSION_SQL), &uid, new, now).fetch_one(pool).await
    })?;
    get(db, id).await?.ok_or_else(|| StorageError::Corrupt(format!("model version {id} vanished after insert")))
}

/// The base version with these weights, registering it on first sight. Safe when several
/// processes start together.
pub async fn register_base(db: &Database, new: &NewModelVersion<'_>) -> Result<ModelVersion, StorageError> {
    if let Some(found) = base_with_sha(db, new.sha256).await? {
        return Ok(found);
    }
    match insert(db, new).await {
        Ok(version) => Ok(version),
        Err(StorageError::Database(err)) if is_unique_violation(&err) => base_with_sha(db, new.sha256)
            .await?
            .ok_or_else(|| StorageError::Corrupt("base model registered concurrently but not found".into())),
        Err(err) => Err(err),
    }
}

/// Registers the base model a process loaded from `dir` (once per content) and returns its
/// version id.
pub async fn register_base_model(
    db: &Database,
    model: &crate::science::model::directory::StoredModel,
    dir: &std::path::Path,
) -> Result<ModelVersionId, StorageError> {
    let config = serde_json::to_string(&model.config).map_err(|e| StorageError::encode("the model config", e))?;
    let weights = model.weights.to_safetensors().map_err(|e| StorageError::encode("the model weights", e))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "base".to_owned());
    let report = std::fs::read_to_string(dir.join(crate::science::model::directory::REPORT_FILE)).ok();
    let new = NewModelVersion {
        name: &name,
        source: ModelSource::Base,
        sha256: &model.sha256,
        config: &config,
        weights: &weights,
        parent_id: None,
        patient_key: None,
        report: report.as_deref(),
        created_by: None,
    };
    Ok(register_base(db, &new).await?.id)
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

async fn base_with_sha(db: &Database, sha256: &str) -> Result<Option<ModelVersion>, StorageError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(select_versions!("WHERE sha256 = $1 AND patient_key IS NULL AND source = 'base'"))
            .bind(sha256)
            .fetch_optional(pool)
            .await
    })?)
}

pub async fn get(db: &Database, id: ModelVersionId) -> Result<Option<ModelVersion>, StorageError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(select_versions!("WHERE id = $1")).bind(id).fetch_optional(pool).await
    })?)
}

/// The safetensors bytes of version `id`.
pub async fn weights(db: &Database, id: ModelVersionId) -> Result<Option<Vec<u8>>, StorageError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT weights FROM model_versions WHERE id = $1").bind(id).fetch_optional(pool).await
    })?)
}

/// The version a patient's series are denoised with: `None` for the base model.
pub async fn active_for_patient(
    db: &Database,
    patient_key: &PatientKey,
) -> Result<Option<ModelVersionId>, StorageError> {
    let found: Option<Option<ModelVersionId>> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT active_version_id FROM patient_models WHERE patient_key = $1")
            .bind(patient_key)
            .fetch_optional(pool)
            .await
    })?;
    Ok(found.flatten())
}

/// Makes `version_id` (`None`: the base model) the patient's active version.
pub async fn activate(
    db: &Database,
    patient_key: &PatientKey,
    version_id: Option<ModelVersionId>,
    activated_by: &str,
) -> Result<(), StorageError> {
    let now = chrono::Utc::now().timestamp_millis();
    execute!(db, ACTIVATE_SQL, patient_key, version_id, activated_by, now)?;
    Ok(())
}

/// The versions a patient's rounds made, oldest first.
pub async fn for_patient(db: &Database, patient_key: &PatientKey) -> Result<Vec<ModelVersion>, StorageError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(select_versions!("WHERE patient_key = $1 ORDER BY id")).bind(patient_key).fetch_all(pool).await
    })?)
}

/// The model a patient's series are denoised with, loaded from the registry; `None` when
/// the patient uses the base model.
pub async fn load_active(
    db: &Database,
    patient_key: &PatientKey,
) -> Result<Option<(ModelVersion, crate::science::model::directory::StoredModel)>, StorageError> {
    let Some(id) = active_for_patient(db, patient_key).await? else { return Ok(None) };
    let version =
        get(db, id).await?.ok_or_else(|| StorageError::Corrupt(format!("active model version {id} is missing")))?;
    let bytes =
        weights(db, id).await?.ok_or_else(|| StorageError::Corrupt(format!("weights of version {id} are missing")))?;
    let config = serde_json::from_str(&version.config)
        .map_err(|e| StorageError::Corrupt(format!("config of version {id}: {e}")))?;
    let model = crate::science::model::directory::StoredModel::from_parts(config, &bytes)
        .map_err(|e| StorageError::Corrupt(format!("weights of version {id}: {e}")))?;
    Ok(Some((version, model)))
}

/// The most recently registered base model: every patient's version 0.
pub async fn latest_base(db: &Database) -> Result<Option<ModelVersion>, StorageError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(select_versions!("WHERE patient_key IS NULL AND source = 'base' ORDER BY id DESC LIMIT 1"))
            .fetch_optional(pool)
            .await
    })?)
}
