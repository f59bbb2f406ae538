//! How a running round talks to whoever runs it: progress after every step, cancellation
//! between steps, and what can go wrong.

use super::round_settings::InvalidRoundSettings;
use crate::science::model::burn_denoise::BurnDenoiseError;
use crate::science::model::weights::WeightsError;

/// Whether the round goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Cancel,
}

/// Sees every step; answers whether to go on (a cancelled round stops within one step).
pub trait RoundObserver {
    fn step(&mut self, step: usize, total: usize, loss: f64) -> Flow;

    /// The parent's held-out N2N loss, known before the first step.
    fn parent_validated(&mut self, _loss: f64) {}
}

impl<F: FnMut(usize, usize, f64) -> Flow> RoundObserver for F {
    fn step(&mut self, step: usize, total: usize, loss: f64) -> Flow {
        self(step, total, loss)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error("the round was cancelled")]
    Cancelled,
    #[error("the pair cannot be used: {0}")]
    Pair(String),
    #[error(transparent)]
    Settings(#[from] InvalidRoundSettings),
    #[error("the parent's weights: {0}")]
    Weights(#[from] WeightsError),
    #[error("the loss became {0}: lower the learning rate")]
    Diverged(f64),
    #[error("validation: {0}")]
    Validation(#[source] BurnDenoiseError),
    #[error("averaging BatchNorm statistics: {0}")]
    Statistics(#[source] WeightsError),
}
