//! One patient's rounds judged against the truth: the round a hospital's N2N halves start
//! (gated as the server gates it), the oracle round that trains the same parameters to the
//! noiseless image, the follow-up scan denoised by the patient's model, and a second round
//! on the follow-up's halves.

use super::measures::Measures;
use super::patient::{Patient, Visit};
use crate::science::model::burn_denoise::denoise_with_burn;
use crate::science::model::directory::StoredModel;
use crate::science::simulation::ReconVersion;
use crate::science::training::fine_tune::{FineTuneData, fine_tune_on_best_device};
use crate::science::training::gate::as_used::{AsUsedEvidence, AsUsedSeries};
use crate::science::training::gate::{self, GateLimits, GateVerdict, RoundEvidence};
use crate::science::training::n2n_round::{
    RoundError, RoundObserver, RoundSettings, anchor_pair, held_out_slices, outside_held_out, run_round_on_best_device,
};

/// The truth calls a round better or worse only beyond this change of the error (percent).
pub const TRUTH_BAND_PERCENT: f64 = 1.0;

/// Which relation between the base model's training data and the patient a case tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// The paper's setting: the patient is reconstructed with the other OSEM version.
    DomainShift,
    /// The patient is reconstructed as the base model's training data were.
    SameDomain,
}

impl CaseKind {
    /// The patient's reconstruction for a base model trained on `base`.
    pub fn patient_recon(self, base: ReconVersion) -> ReconVersion {
        match (self, base) {
            (Self::SameDomain, version) => version,
            (Self::DomainShift, ReconVersion::V1) => ReconVersion::V2,
            (Self::DomainShift, ReconVersion::V2) => ReconVersion::V1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DomainShift => "domain shift",
            Self::SameDomain => "same domain",
        }
    }
}

/// What the truth says of a round: the change of the full-count series' error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruthVerdict {
    Better,
    Worse,
    /// Within ±[`TRUTH_BAND_PERCENT`]: any decision agrees.
    Unchanged,
}

impl TruthVerdict {
    pub fn of(error_change_percent: f64) -> Self {
        if error_change_percent < -TRUTH_BAND_PERCENT {
            Self::Better
        } else if error_change_percent > TRUTH_BAND_PERCENT {
            Self::Worse
        } else {
            Self::Unchanged
        }
    }

    /// Whether a gate that passed (or not) decided as the truth would.
    pub fn agrees_with(self, passed: bool) -> bool {
        match self {
            Self::Unchanged => true,
            Self::Better => passed,
            Self::Worse => !passed,
        }
    }
}

/// One round, gated and judged.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JudgedRound {
    pub fraction_retrained: f64,
    pub seconds: f64,
    /// Mean training loss over the first and the last tenth of the steps.
    pub training_loss_start: f64,
    pub training_loss_end: f64,
    pub validation_loss_parent: f64,
    pub validation_loss: f64,
    pub gate: GateVerdict,
    /// The full-count series denoised by the parent, then by the new network.
    pub before: Measures,
    pub after: Measures,
    /// Change of the full-count series' error (all slices), percent; negative is better.
    pub error_change_percent: f64,
    pub truth: TruthVerdict,
    pub gate_agrees: bool,
}

impl JudgedRound {
    /// The change the patient sees: none when the gate kept the parent.
    pub fn effective_change_percent(&self) -> f64 {
        if self.gate.passed { self.error_change_percent } else { 0.0 }
    }
}

/// The oracle: the same mechanism, steps and trainable parameters, trained to the truth.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OracleRound {
    pub after: Measures,
    pub error_change_percent: f64,
    pub seconds: f64,
}

/// The later scan, and a second round on its halves.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FollowUp {
    /// The follow-up's full-count series denoised by the parent of the first round.
    pub parent: Measures,
    /// The same series denoised by the patient's model after the first round.
    pub patient_model: Measures,
    pub error_change_percent: f64,
    /// A second round, from the patient's model, on the follow-up's halves.
    pub second_round: JudgedRound,
}

/// Everything measured for one patient.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CaseResult {
    pub seed: u64,
    pub kind: CaseKind,
    pub recon: ReconVersion,
    /// The full-count series itself (OSEM alone).
    pub osem: Measures,
    pub round: JudgedRound,
    /// Absent when only first rounds were asked for (a sweep); so is the follow-up.
    pub oracle: Option<OracleRound>,
    pub follow_up: Option<FollowUp>,
}

/// Which rounds a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CasePlan {
    /// The oracle round, the follow-up scan and the second round (a sweep needs none).
    pub beyond_first_round: bool,
}

/// Runs and judges every round of `patient` from `parent`.
pub fn evaluate(
    parent: &StoredModel,
    patient: &Patient,
    kind: CaseKind,
    settings: &RoundSettings,
    limits: &GateLimits,
    plan: CasePlan,
    observer: &mut dyn RoundObserver,
) -> Result<CaseResult, RoundError> {
    let held_out = held_out_slices(patient.truth.grid.slices, settings.validation_fraction);
    let osem = Measures::of(&patient.first.full, patient, &held_out);
    let (round, model) = judged_round(parent, patient, &patient.first, settings, limits, observer)?;

    if !plan.beyond_first_round {
        return Ok(CaseResult {
            seed: patient.seed,
            kind,
            recon: patient.recon,
            osem,
            round,
            oracle: None,
            follow_up: None,
        });
    }
    let oracle = oracle_round(parent, patient, &held_out, round.before.error, settings, observer)?;
    let patient_model = if round.gate.passed { &model } else { parent };
    let follow_up = follow_up(parent, patient_model, patient, &held_out, settings, limits, observer)?;
    Ok(CaseResult {
        seed: patient.seed,
        kind,
        recon: patient.recon,
        osem,
        round,
        oracle: Some(oracle),
        follow_up: Some(follow_up),
    })
}

/// The oracle: the first round's mechanism trained from each half to the truth.
fn oracle_round(
    parent: &StoredModel,
    patient: &Patient,
    held_out: &[usize],
    error_before: f64,
    settings: &RoundSettings,
    observer: &mut dyn RoundObserver,
) -> Result<OracleRound, RoundError> {
    let started = std::time::Instant::now();
    let (truth, halves) = (&patient.truth, &patient.first.halves);
    let pairs = outside_held_out(&[(&halves.a, truth), (&halves.b, truth)], held_out, halves, settings);
    let anchor = anchor_pair(parent, &patient.first.full, held_out, settings)?;
    let data = FineTuneData { pairs: &pairs, anchor: anchor.as_ref() };
    let (oracle, _) = fine_tune_on_best_device(parent, data, settings, observer)?;
    let after = Measures::of(&denoise(&oracle.model, &patient.first.full)?, patient, held_out);
    Ok(OracleRound {
        error_change_percent: change_percent(after.error, error_before),
        after,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The follow-up scan denoised by the parent and by the patient's model, and a second round
/// from the patient's model on its halves.
fn follow_up(
    parent: &StoredModel,
    patient_model: &StoredModel,
    patient: &Patient,
    held_out: &[usize],
    settings: &RoundSettings,
    limits: &GateLimits,
    observer: &mut dyn RoundObserver,
) -> Result<FollowUp, RoundError> {
    let later = &patient.follow_up;
    let by_parent = Measures::of(&denoise(parent, &later.full)?, patient, held_out);
    let by_patient_model = Measures::of(&denoise(patient_model, &later.full)?, patient, held_out);
    let (second_round, _) = judged_round(patient_model, patient, later, settings, limits, observer)?;
    Ok(FollowUp {
        error_change_percent: change_percent(by_patient_model.error, by_parent.error),
        parent: by_parent,
        patient_model: by_patient_model,
        second_round,
    })
}

/// A round on `visit`'s halves from `parent`, gated as the server gates it, and the new
/// network's and the parent's outputs on the visit's full-count series against the truth.
fn judged_round(
    parent: &StoredModel,
    patient: &Patient,
    visit: &Visit,
    settings: &RoundSettings,
    limits: &GateLimits,
    observer: &mut dyn RoundObserver,
) -> Result<(JudgedRound, StoredModel), RoundError> {
    let (outcome, _) = run_round_on_best_device(parent, &visit.halves, Some(&visit.full), settings, observer)?;
    let report = &outcome.report;
    // As the server does, the checks on the series as used run on the full-count series.
    let (full_by_parent, full_by_new) = (denoise(parent, &visit.full)?, denoise(&outcome.model, &visit.full)?);
    let evidence = RoundEvidence {
        as_used: AsUsedEvidence {
            series: AsUsedSeries::FullCount,
            input: &visit.full,
            parent: &full_by_parent,
            new: &full_by_new,
        },
        pair: &visit.halves,
        parent: &outcome.parent_outputs,
        new: &outcome.outputs,
        held_out: &report.held_out,
        validation_loss_parent: report.validation_loss_parent,
        validation_loss: report.validation_loss,
    };
    let gate = gate::judge(&evidence, limits);
    let before = Measures::of(&full_by_parent, patient, &report.held_out);
    let after = Measures::of(&full_by_new, patient, &report.held_out);
    let error_change_percent = change_percent(after.error, before.error);
    let truth = TruthVerdict::of(error_change_percent);
    let tenth = (report.losses.len() / 10).max(1);
    let mean = |points: &[crate::science::training::base::checkpoint::LossPoint]| {
        points.iter().map(|p| p.loss).sum::<f64>() / points.len().max(1) as f64
    };
    let judged = JudgedRound {
        fraction_retrained: report.fraction_retrained,
        seconds: report.seconds,
        training_loss_start: mean(&report.losses[..tenth.min(report.losses.len())]),
        training_loss_end: mean(&report.losses[report.losses.len().saturating_sub(tenth)..]),
        validation_loss_parent: report.validation_loss_parent,
        validation_loss: report.validation_loss,
        gate_agrees: truth.agrees_with(gate.passed),
        gate,
        before,
        after,
        error_change_percent,
        truth,
    };
    Ok((judged, outcome.model))
}

fn denoise(
    model: &StoredModel,
    image: &crate::science::image::Image3,
) -> Result<crate::science::image::Image3, RoundError> {
    denoise_with_burn(model, image).map_err(RoundError::Validation)
}

/// (new / old − 1) × 100.
pub fn change_percent(new: f64, old: f64) -> f64 {
    (new / old - 1.0) * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_truth_band_decides_what_agrees() {
        assert_eq!(TruthVerdict::of(-3.0), TruthVerdict::Better);
        assert_eq!(TruthVerdict::of(0.9), TruthVerdict::Unchanged);
        assert_eq!(TruthVerdict::of(1.5), TruthVerdict::Worse);
        assert!(TruthVerdict::Better.agrees_with(true) && !TruthVerdict::Better.agrees_with(false));
        assert!(TruthVerdict::Worse.agrees_with(false) && !TruthVerdict::Worse.agrees_with(true));
        assert!(TruthVerdict::Unchanged.agrees_with(true) && TruthVerdict::Unchanged.agrees_with(false));
    }

    #[test]
    fn a_domain_shift_patient_is_reconstructed_with_the_other_version() {
        assert_eq!(CaseKind::DomainShift.patient_recon(ReconVersion::V1), ReconVersion::V2);
        assert_eq!(CaseKind::SameDomain.patient_recon(ReconVersion::V1), ReconVersion::V1);
    }
}
