//! TGD^n (docs/science.md §4): fine-tune, recompute KSE on the fine-tuned network, fine-tune
//! again. Each pass has its own mask; what lies outside the union of the passes' masks keeps
//! its value bit for bit, and the report lists every pass.

use burn::tensor::backend::AutodiffBackend;

use super::trainer::{OptimizerSettings, Trainer};
use super::update_plan::{UpdatePlan, UpdateRule};
use crate::science::model::network::DnCnn;
use crate::science::model::tgd_mask::{NetworkMask, mask_of_convolutions};
use crate::science::model::weights::WeightsError;

/// The TGD mask a network's own KSE gives at threshold `phi`.
pub fn kse_mask<B: burn::tensor::backend::Backend>(network: &DnCnn<B>, phi: f64) -> Result<NetworkMask, WeightsError> {
    Ok(mask_of_convolutions(&network.to_weights().convolutions()?, phi))
}

/// What a TGD^n run did: each pass's mask, and which channels any pass retrained.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TgdReport {
    pub passes: Vec<NetworkMask>,
    /// Per layer, per output channel: retrained in at least one pass.
    pub union: Vec<Vec<bool>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PassError<E> {
    #[error("computing KSE: {0}")]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Training(E),
}

/// Runs `passes` TGD passes. Before each, KSE of the current network gives the plan;
/// `train` runs that pass's steps on the trainer (and may stop early with an error, e.g.
/// when a round is cancelled).
pub fn run_tgd_passes<B, E>(
    mut network: DnCnn<B>,
    passes: usize,
    phi: f64,
    rule: UpdateRule,
    settings: OptimizerSettings,
    mut train: impl FnMut(usize, &mut Trainer<B>) -> Result<(), E>,
) -> Result<(DnCnn<B>, TgdReport), PassError<E>>
where
    B: AutodiffBackend,
{
    let mut report = TgdReport { passes: Vec::new(), union: Vec::new() };
    for pass in 0..passes {
        let mask = kse_mask(&network, phi)?;
        let plan = UpdatePlan::from_mask(&mask, rule);
        if report.union.is_empty() {
            report.union = plan.retrain.clone();
        } else {
            for (union, layer) in report.union.iter_mut().zip(&plan.retrain) {
                for (u, r) in union.iter_mut().zip(layer) {
                    *u |= *r;
                }
            }
        }
        report.passes.push(mask);
        let mut trainer = Trainer::new(network, plan, settings);
        train(pass, &mut trainer).map_err(PassError::Training)?;
        network = trainer.into_network();
    }
    Ok((network, report))
}
