//! Asking for a round: which pair it trains on and with what settings. The admin's request
//! (`POST /api/v1/patients/{patient_key}/rounds`) and pair detection both come through
//! here, so both check the series the same way and both respect the one-active-round rule.

use serde_json::{Map, Value};

use super::LearningSettings;
use super::pairs::{CompletePair, complete_pairs};
use crate::domain::PatientKey;
use crate::science::training::n2n_round::{InvalidRoundSettings, RoundSettings};
use crate::science::training::pair_source::PairSource;
use crate::storage::rounds::{self, Created, NewRound};
use crate::storage::series_processing::{self, SeriesProcessing};
use crate::storage::{Database, StorageError};

/// Which pair a round trains on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PairRequest {
    /// The patient's most recent complete pair of N2N halves (the default).
    Detected,
    /// Two series an admin names: two independent reconstructions of one acquisition.
    Series { series_a: String, series_b: String },
    /// One series split by neighbour sub-sampling: weaker, recorded as such.
    NeighbourSubsampling { series_uid: String },
}

/// A round request: the pair and the settings to change from the defaults.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundRequest {
    pub pair: Option<PairRequest>,
    /// Fields of the round's settings to change (φ, steps_per_pass, learning_rate…).
    pub settings: Option<Map<String, Value>>,
}

/// Why a round cannot be requested; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no patient has this key")]
    UnknownPatient,
    #[error("{0}")]
    Unusable(String),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Requested round settings that cannot be used; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    #[error("round settings: {0}")]
    Invalid(#[source] serde_json::Error),
    #[error(transparent)]
    OutOfRange(#[from] InvalidRoundSettings),
}

/// `defaults` with the requested changes applied, validated.
pub fn merged_settings(
    defaults: &RoundSettings,
    changes: Option<&Map<String, Value>>,
) -> Result<RoundSettings, SettingsError> {
    let mut merged = serde_json::to_value(defaults).map_err(SettingsError::Encode)?;
    if let (Value::Object(target), Some(changes)) = (&mut merged, changes) {
        for (key, value) in changes {
            target.insert(key.clone(), value.clone());
        }
    }
    let settings: RoundSettings = serde_json::from_value(merged).map_err(SettingsError::Invalid)?;
    settings.validate()?;
    Ok(settings)
}

/// A series of this patient, or why it cannot be used.
async fn patient_series(
    db: &Database,
    patient_key: &PatientKey,
    series_uid: &str,
) -> Result<SeriesProcessing, RequestError> {
    let series = series_processing::get(db, series_uid)
        .await?
        .ok_or_else(|| RequestError::Unusable(format!("petal holds no series {series_uid}")))?;
    if series.patient_key != *patient_key {
        return Err(RequestError::Unusable(format!("series {series_uid} belongs to another patient")));
    }
    if series.source_series_uid.is_some() || series.reason.as_deref().is_some_and(|r| r.starts_with("derived by petal"))
    {
        return Err(RequestError::Unusable(format!("series {series_uid} is petal's own output, not a reconstruction")));
    }
    Ok(series)
}

/// Creates the round (queued, with its job), or says which round is already active.
pub async fn request_round(
    db: &Database,
    patient_key: &PatientKey,
    request: &RoundRequest,
    learning: &LearningSettings,
    requested_by: &str,
) -> Result<Created, RequestError> {
    if crate::storage::patients::get(db, patient_key).await?.is_none() {
        return Err(RequestError::UnknownPatient);
    }
    let settings = merged_settings(&learning.round_defaults, request.settings.as_ref())?;
    let (source, series_a, series_b) = match request.pair.clone().unwrap_or(PairRequest::Detected) {
        PairRequest::Detected => {
            let pairs = complete_pairs(db, Some(patient_key), false, learning.quiet_period).await?;
            let CompletePair { series_a, series_b, .. } = pairs.into_iter().last().ok_or_else(|| {
                RequestError::Unusable(
                    "this patient has no complete pair of N2N halves: name two series, or ask for neighbour \
                     sub-sampling of one"
                        .into(),
                )
            })?;
            (PairSource::DetectedPair, series_a, Some(series_b))
        }
        PairRequest::Series { series_a, series_b } => {
            if series_a == series_b {
                return Err(RequestError::Unusable("a pair needs two different series".into()));
            }
            let (a, b) =
                (patient_series(db, patient_key, &series_a).await?, patient_series(db, patient_key, &series_b).await?);
            if a.received_instances != b.received_instances {
                return Err(RequestError::Unusable(format!(
                    "the two series hold {} and {} instances: halves of one acquisition share their geometry",
                    a.received_instances, b.received_instances
                )));
            }
            (PairSource::AdminPair, series_a, Some(series_b))
        }
        PairRequest::NeighbourSubsampling { series_uid } => {
            patient_series(db, patient_key, &series_uid).await?;
            (PairSource::NeighbourSubsampling, series_uid, None)
        }
    };
    let pair = ChosenPair { source, series_a: &series_a, series_b: series_b.as_deref() };
    Ok(create_round(db, patient_key, &pair, &settings, requested_by).await?)
}

/// The series a round trains on.
pub(super) struct ChosenPair<'a> {
    pub source: PairSource,
    pub series_a: &'a str,
    pub series_b: Option<&'a str>,
}

/// Stores the round and its job (no checks: the callers made them).
pub(super) async fn create_round(
    db: &Database,
    patient_key: &PatientKey,
    pair: &ChosenPair<'_>,
    settings: &RoundSettings,
    requested_by: &str,
) -> Result<Created, StorageError> {
    let settings_json = serde_json::to_string(settings).map_err(|e| StorageError::encode("the round settings", e))?;
    let new = NewRound {
        patient_key,
        kind: settings.kind.as_str(),
        pair_source: pair.source.as_str(),
        series_a: pair.series_a,
        series_b: pair.series_b,
        settings: &settings_json,
        total_steps: i64::try_from(settings.total_steps()).unwrap_or(i64::MAX),
        requested_by,
    };
    rounds::create(db, &new).await
}
