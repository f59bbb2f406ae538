//! Pair detection (DESIGN.md §1.5 (b)): two complete N2N halves of one study, with the same
//! number of instances, form a pair; when automatic rounds are on, a sweeper starts a round
//! for every pair no round has used yet. Whether the halves truly share their geometry is
//! checked when the round reads them, and a round that finds otherwise fails saying so.
//! The same sweeper ends rounds whose job failed for good, so none stays `running` forever.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use super::LearningSettings;
use super::request::{ChosenPair, create_round};
use crate::storage::jobs::now_ms;
use crate::storage::rounds::{self, Created};
use crate::storage::series_processing::{self, SeriesProcessing};
use crate::storage::{Database, StorageError};
use crate::training::pair_source::PairSource;

/// Who automatic rounds are recorded as requested by.
pub const DETECTOR: &str = "petal (pair detection)";

/// Two complete halves of one study.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletePair {
    pub patient_key: String,
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
    patient_key: Option<&str>,
    unused_only: bool,
    quiet: Duration,
) -> Result<Vec<CompletePair>, StorageError> {
    let quiet_before_ms = now_ms().saturating_sub(i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX));
    let mut by_study: BTreeMap<(String, String), Vec<SeriesProcessing>> = BTreeMap::new();
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

/// One pass: a round for every complete pair no round has used, unless its patient already
/// has an active round (the pair waits for the next pass). Returns how many rounds started.
pub async fn detect(db: &Database, learning: &LearningSettings) -> Result<usize, StorageError> {
    let mut started = 0;
    for pair in complete_pairs(db, None, true, learning.quiet_period).await? {
        let chosen =
            ChosenPair { source: PairSource::DetectedPair, series_a: &pair.series_a, series_b: Some(&pair.series_b) };
        match create_round(db, &pair.patient_key, &chosen, &learning.round_defaults, DETECTOR).await? {
            Created::Round(round) => {
                tracing::info!(round = round.id, patient = %pair.patient_key, "a pair of N2N halves started a round");
                started += 1;
            }
            Created::AlreadyActive(_) => {}
        }
    }
    Ok(started)
}

/// Every `every` until `stop` turns true: ends rounds whose job failed for good, and (when
/// automatic rounds are on) starts rounds for new pairs.
pub async fn run_sweeper(db: Database, learning: LearningSettings, every: Duration, stop: watch::Receiver<bool>) {
    crate::worker::every(every, stop, || async {
        match rounds::fail_orphaned(&db).await {
            Ok(0) => {}
            Ok(ended) => tracing::warn!(rounds = ended, "rounds whose job failed for good are marked failed"),
            Err(err) => tracing::warn!(error = %err, "could not look for rounds whose job failed; retrying"),
        }
        if learning.auto_rounds
            && let Err(err) = detect(&db, &learning).await
        {
            tracing::warn!(error = %err, "pair detection failed; retrying");
        }
    })
    .await;
}
