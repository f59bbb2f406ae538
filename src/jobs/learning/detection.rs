//! Pair detection (docs/science.md §5 (b)): two complete N2N halves of one study, with the same
//! number of instances, form a pair; when automatic rounds are on, a sweeper starts a round
//! for every pair no round has used yet. Whether the halves truly share their geometry is
//! checked when the round reads them, and a round that finds otherwise fails saying so.
//! The same sweeper ends rounds whose job failed for good, so none stays `running` forever.

use std::time::Duration;

use tokio::sync::watch;

use super::LearningSettings;
use super::pairs::complete_pairs;
use super::request::{ChosenPair, create_round};
use crate::science::training::pair_source::PairSource;
use crate::storage::rounds::{self, Created};
use crate::storage::{Database, StorageError};

/// Who automatic rounds are recorded as requested by.
pub const DETECTOR: &str = "petal (pair detection)";

/// One pass: a round for every complete pair no round has used, unless its patient already
/// has an active round (the pair waits for the next pass). Returns how many rounds started.
pub async fn detect(db: &Database, learning: &LearningSettings) -> Result<usize, StorageError> {
    let mut started = 0;
    for pair in complete_pairs(db, None, true, learning.quiet_period).await? {
        let chosen =
            ChosenPair { source: PairSource::DetectedPair, series_a: &pair.series_a, series_b: Some(&pair.series_b) };
        match create_round(db, &pair.patient_key, &chosen, &learning.round_defaults, DETECTOR).await? {
            Created::Round(round) => {
                tracing::info!(round = %round.id, patient = %pair.patient_key, "a pair of N2N halves started a round");
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
    crate::jobs::worker::every(every, stop, || async {
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
