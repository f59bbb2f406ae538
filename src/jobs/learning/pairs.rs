//! Which N2N halves form complete pairs: for pair detection ([`super::detection`]) and for
//! an admin's request of the detected pair ([`super::request`]).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::PatientKey;
use crate::storage::jobs::now_ms;
use crate::storage::series_processing::{self, SeriesProcessing};
use crate::storage::{Database, StorageError};

/// Two complete halves of one study.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletePair {
    pub patient_key: PatientKey,
    pub study_uid: String,
    pub series_a: String,
    pub series_b: String,
}

/// A half is complete when it holds its expected count, or has been quiet for `quiet`.
fn complete(half: &SeriesProcessing, quiet_before_ms: i64) -> bool {
    match half.expected_instances {
        Some(expected) if half.received_instances >= expected => true,
        _ => half.last_instance_ms <= quiet_before_ms,
    }
}

/// The complete pairs of one patient (or of all), oldest first: in each study, complete
/// halves are paired in arrival order among those with equal instance counts.
pub async fn complete_pairs(
    db: &Database,
    patient_key: Option<&PatientKey>,
    unused_only: bool,
    quiet: Duration,
) -> Result<Vec<CompletePair>, StorageError> {
    let quiet_before_ms = now_ms().saturating_sub(i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX));
    let mut by_study: BTreeMap<(PatientKey, String), Vec<SeriesProcessing>> = BTreeMap::new();
    for half in series_processing::n2n_halves(db, patient_key, unused_only).await? {
        if complete(&half, quiet_before_ms) {
            by_study.entry((half.patient_key.clone(), half.study_uid.clone())).or_default().push(half);
        }
    }
    let mut pairs = Vec::new();
    for ((patient_key, study_uid), mut halves) in by_study {
        while let Some(first) = (!halves.is_empty()).then(|| halves.remove(0)) {
            if let Some(at) = halves.iter().position(|h| h.received_instances == first.received_instances) {
                let second = halves.remove(at);
                pairs.push(CompletePair {
                    patient_key: patient_key.clone(),
                    study_uid: study_uid.clone(),
                    series_a: first.series_uid,
                    series_b: second.series_uid,
                });
            }
        }
    }
    Ok(pairs)
}
