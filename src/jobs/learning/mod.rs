//! Online learning (docs/science.md §4–5, docs/learning.md): rounds that fine-tune a copy of a
//! patient's model with Noise2Noise under Targeted Gradient Descent, as `fine_tune` jobs on
//! the shared queue. [`request`] checks and stores a round, [`detection`] starts rounds for
//! pairs of N2N halves by itself, and [`round_job`] trains, gates, stores the version and
//! activates it. The science itself lives in [`crate::training`].

pub mod detection;
pub mod pairs;
pub mod request;
pub mod round_job;

use std::time::Duration;

use crate::science::training::gate::GateLimits;
use crate::science::training::n2n_round::RoundSettings;

/// How rounds are run, from the configuration (`LearningArgs`).
#[derive(Debug, Clone)]
pub struct LearningSettings {
    /// Start rounds by themselves for detected pairs.
    pub auto_rounds: bool,
    /// Settings of a round that a request does not change.
    pub round_defaults: RoundSettings,
    /// A half without its expected count is complete after this long without a new instance.
    pub quiet_period: Duration,
    pub gate: GateLimits,
    /// Denoise the patient's latest series again once a new version is active.
    pub redenoise_after_round: bool,
    /// How often a running round writes its progress.
    pub progress_interval: Duration,
}
