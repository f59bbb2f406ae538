//! `petal eval rounds` (src/app/cli/eval_rounds.rs): online learning judged against the
//! truth. Simulated patients whose noiseless reconstruction is known go through the round a
//! hospital's N2N halves would start, and each round is judged by what it does to the
//! patient's full-count series: its error against the truth, every lesion's SUV, liver
//! noise, new hot spots, and whether the gate decided as the truth would. An oracle round
//! (the same parameters trained to the truth) shows what the mechanism can gain at all; a
//! follow-up scan and a second round show whether gains last and accumulate.
//!
//! Two cases per patient: the paper's domain shift (a base trained on one OSEM version, a
//! patient reconstructed with the other) and the same domain. Patients come from pinned,
//! disjoint seed sets: [`ACCEPTANCE_SEEDS`] judge the shipped defaults, [`SWEEP_SEEDS`] are
//! for choosing them, so the defaults are never judged on the patients that chose them.

pub mod case;
pub mod measures;
pub mod patient;
pub mod report;

use std::ops::Range;

use case::{CaseKind, CaseResult};

use crate::science::image::Grid;
use crate::science::training::gate::GateLimits;
use crate::science::training::n2n_round::RoundSettings;

/// Patients that judge the defaults (and whatever `--settings` asks for).
pub const ACCEPTANCE_SEEDS: Range<u64> = 5000..5005;
/// Patients a sweep of the round settings may use; disjoint from [`ACCEPTANCE_SEEDS`].
pub const SWEEP_SEEDS: Range<u64> = 6000..6003;

/// A lesion's SUVmean may move at most this many percentage points further from the truth
/// after an activated round (the acceptance criterion of online learning).
pub const LESION_DRIFT_POINTS: f64 = 2.0;

/// How large the simulated patients are.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoundsScale {
    pub name: String,
    pub size: usize,
    pub slices: usize,
    /// Scan duration: the full-count series' noise level (deployment-like at 120 s).
    pub seconds_per_bed: f64,
    /// When set, every round runs this many steps per pass (a smoke run; its numbers mean
    /// nothing).
    pub steps_per_pass: Option<usize>,
}

impl RoundsScale {
    /// The scale the recorded results use: the size `petal bench round` trains on.
    pub fn default_scale() -> Self {
        Self { name: "default".into(), size: 96, slices: 32, seconds_per_bed: 120.0, steps_per_pass: None }
    }

    /// The recorded scale at another size: named after it, so its cases and results never
    /// mix with the recorded ones.
    pub fn resized(size: usize, slices: usize) -> Self {
        let default = Self::default_scale();
        if (size, slices) == (default.size, default.slices) {
            return default;
        }
        Self { name: format!("{size}x{slices}"), size, slices, ..default }
    }

    /// A smoke run of a few minutes.
    pub fn quick() -> Self {
        Self { name: "quick".into(), size: 64, slices: 8, seconds_per_bed: 120.0, steps_per_pass: Some(10) }
    }

    pub fn grid(&self) -> Grid {
        Grid::new(self.size, self.slices)
    }

    /// `settings` as this scale runs them.
    pub fn settings(&self, settings: &RoundSettings) -> RoundSettings {
        let mut settings = settings.clone();
        if let Some(steps) = self.steps_per_pass {
            settings.steps_per_pass = steps;
            settings.patch = settings.patch.min(self.size / 2);
        }
        settings
    }
}

/// Everything the report is written from (also saved as rounds.json).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoundsResults {
    pub command: String,
    pub date: String,
    pub machine: String,
    pub scale: RoundsScale,
    /// The parent of every first round, and its sha256.
    pub base_model: String,
    pub base_sha256: String,
    pub settings: RoundSettings,
    pub limits: GateLimits,
    pub cases: Vec<CaseResult>,
    pub summary: Summary,
}

/// The figures the acceptance criteria are stated in.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Domain-shift patients: median change of the full-count series' error after the
    /// default round (a rejected round counts as no change), percent.
    pub domain_shift_median_change_percent: Option<f64>,
    /// Domain-shift patients: median change the oracle round gives, percent.
    pub domain_shift_oracle_median_change_percent: Option<f64>,
    /// The largest (worst) effective change of any patient, per case, percent.
    pub domain_shift_worst_change_percent: Option<f64>,
    pub same_domain_worst_change_percent: Option<f64>,
    /// The largest amount, in points, by which a lesion's SUVmean moved further from the
    /// truth after an activated round (domain-shift patients).
    pub worst_lesion_drift_points: Option<f64>,
    /// Rounds (first and second) whose gate decided as the truth would, and all rounds.
    pub gate_agreements: usize,
    pub rounds: usize,
}

impl Summary {
    pub fn of(cases: &[CaseResult]) -> Self {
        let of_kind = |kind: CaseKind| cases.iter().filter(move |c| c.kind == kind);
        let effective: Vec<f64> = of_kind(CaseKind::DomainShift).map(|c| c.round.effective_change_percent()).collect();
        let oracle: Vec<f64> =
            of_kind(CaseKind::DomainShift).filter_map(|c| c.oracle.as_ref().map(|o| o.error_change_percent)).collect();
        let worst = |kind: CaseKind| {
            of_kind(kind)
                .map(|c| c.round.effective_change_percent())
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        };
        let worst_lesion_drift_points = of_kind(CaseKind::DomainShift)
            .filter(|c| c.round.gate.passed)
            .flat_map(|c| {
                c.round.after.lesions.iter().filter_map(|after| {
                    let before = c.round.before.lesion(after.label)?;
                    Some(after.suv_mean_bias_percent.abs() - before.suv_mean_bias_percent.abs())
                })
            })
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let rounds: Vec<_> = cases
            .iter()
            .flat_map(|c| std::iter::once(&c.round).chain(c.follow_up.as_ref().map(|f| &f.second_round)))
            .collect();
        Self {
            domain_shift_median_change_percent: median(&effective),
            domain_shift_oracle_median_change_percent: median(&oracle),
            domain_shift_worst_change_percent: worst(CaseKind::DomainShift),
            same_domain_worst_change_percent: worst(CaseKind::SameDomain),
            worst_lesion_drift_points,
            gate_agreements: rounds.iter().filter(|r| r.gate_agrees).count(),
            rounds: rounds.len(),
        }
    }
}

/// The median; `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) { (sorted[middle - 1] + sorted[middle]) / 2.0 } else { sorted[middle] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_sets_are_disjoint_and_medians_are_middles() {
        let disjoint = |a: &Range<u64>, b: &Range<u64>| a.end <= b.start || b.end <= a.start;
        assert!(disjoint(&ACCEPTANCE_SEEDS, &SWEEP_SEEDS));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn a_resized_scale_is_named_apart_from_the_recorded_one() {
        assert_eq!(RoundsScale::resized(96, 32), RoundsScale::default_scale());
        let larger = RoundsScale::resized(128, 32);
        assert_eq!((larger.name.as_str(), larger.size, larger.slices), ("128x32", 128, 32));
        assert_eq!(larger.seconds_per_bed, RoundsScale::default_scale().seconds_per_bed);
        assert_eq!(larger.steps_per_pass, None, "a resized scale runs the real rounds");
    }
}
