//! The acceptance gate of a round (docs/learning.md): a new version goes live only if,
//! on the pair's held-out slices, the estimated change of its error against the clean
//! image (noise floor removed, [`super::error_estimate`]) shows an improvement at the
//! gate's confidence (and, when a limit is set, its Noise2Noise validation loss is not
//! worse than its parent's), and its output keeps the quantities a reader measures: mean
//! SUV in the body and in large uniform regions near the input's, and SUVmax in hot spots
//! within the range between the parent's output and the input, each up to a limit and
//! never held against a round where the parent did no better.
//!
//! Regions come from the parent's output alone: the body is what is clearly above the air,
//! uniform regions are body voxels whose 5×5 neighbourhood varies little, hot spots are
//! connected groups of voxels far above the body's mean ([`crate::science::regions`]).
//!
//! [`as_used`] adds the checks on the series as it is used (the full-count series where
//! the study holds one), against its input as well as the parent's output.

pub mod as_used;
pub mod limits;

use self::as_used::{AsUsedEvidence, AsUsedMeasures};
pub use self::limits::GateLimits;
use self::limits::{HOT_FACTOR, MAX_HOT_SPOTS, beyond_range_percent, change_percent, within};
use super::error_estimate::{self, ErrorChange, HalfOutputs};
use super::pair_source::N2nPair;
use crate::science::image::Image3;
use crate::science::regions::{MIN_REGION_VOXELS, body_mask, hot_groups, max_over, uniform_mask};

/// What the gate measured (changes are the new output against the parent's, percent).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GateMeasures {
    pub validation_loss_parent: f64,
    pub validation_loss: f64,
    pub body_voxels: usize,
    pub body_mean_change_percent: f64,
    pub uniform_voxels: usize,
    /// `None` when the held-out slices hold no region large and uniform enough.
    pub uniform_mean_change_percent: Option<f64>,
    pub hot_spots: usize,
    /// The largest change of a hot spot's SUVmax, signed; `None` without hot spots.
    pub hot_spot_max_change_percent: Option<f64>,
    /// The largest move of a hot spot's SUVmax beyond the range between the parent's output
    /// and the input (half A), signed ([`limits::beyond_range_percent`]); `None` without hot
    /// spots, and in verdicts stored before it was measured.
    #[serde(default)]
    pub hot_spot_max_beyond_percent: Option<f64>,
    /// Means against the input's (half A), both outputs: shown, not limited. The means are
    /// limited on the series as used ([`as_used`]), whose input is what a reader reads; half
    /// A, at half the counts, is a worse reference. Absent from verdicts stored before.
    #[serde(default)]
    pub drift: Option<HeldOutDrift>,
    /// The estimated change of the error against the clean image, with its interval.
    pub error_change: ErrorChange,
    /// The checks on the series as it is used, against its input (absent from verdicts
    /// stored before they existed).
    #[serde(default)]
    pub as_used: Option<AsUsedMeasures>,
}

/// What the gate judges a round by: the held-out slices of its pair and both networks'
/// outputs for both halves there, and both networks' outputs for the series as it is used.
#[derive(Debug, Clone, Copy)]
pub struct RoundEvidence<'a> {
    pub as_used: AsUsedEvidence<'a>,
    pub pair: &'a N2nPair,
    pub parent: &'a HalfOutputs,
    pub new: &'a HalfOutputs,
    pub held_out: &'a [usize],
    pub validation_loss_parent: f64,
    pub validation_loss: f64,
}

/// On the held-out slices, each output's means against the input's, percent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeldOutDrift {
    pub body_parent_percent: f64,
    pub body_percent: f64,
    /// `None` when the held-out slices hold no region large and uniform enough.
    pub uniform_parent_percent: Option<f64>,
    pub uniform_percent: Option<f64>,
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GateVerdict {
    pub passed: bool,
    /// Why it failed, one sentence per limit broken (empty when it passed).
    pub reasons: Vec<String>,
    pub measures: GateMeasures,
    pub limits: GateLimits,
}

/// Seeds the bootstrap, so a round's verdict is the same every time it is judged.
const ERROR_BOOTSTRAP_SEED: u64 = 0x6a7e;

/// Judges a round's new network against its parent on the evidence of its held-out slices.
pub fn judge(evidence: &RoundEvidence<'_>, limits: &GateLimits) -> GateVerdict {
    let (parent_output, new_output, slices) = (&evidence.parent.a, &evidence.new.a, evidence.held_out);
    let (validation_loss_parent, validation_loss) = (evidence.validation_loss_parent, evidence.validation_loss);
    let grid = parent_output.grid;
    let plane = grid.pixels_per_slice();
    let mut held = vec![false; grid.slices];
    for z in slices {
        if let Some(flag) = held.get_mut(*z) {
            *flag = true;
        }
    }
    let in_slices = |i: usize| held.get(i / plane).copied().unwrap_or(false);
    let (body, body_level) = body_mask(parent_output, &in_slices);
    let body_voxels = body.iter().filter(|b| **b).count();
    let body_mean = parent_output.masked_mean(&body);
    let body_mean_change_percent = change_percent(new_output.masked_mean(&body), body_mean);

    let uniform = uniform_mask(parent_output, &body, body_mean * HOT_FACTOR);
    let uniform_voxels = uniform.iter().filter(|u| **u).count();
    let uniform_mean_change_percent = (uniform_voxels >= MIN_REGION_VOXELS)
        .then(|| change_percent(new_output.masked_mean(&uniform), parent_output.masked_mean(&uniform)));

    let input = &evidence.pair.a;
    let against_input =
        |mask: &[bool], output: &Image3| change_percent(output.masked_mean(mask), input.masked_mean(mask));
    let uniform_drift =
        |output: &Image3| (uniform_voxels >= MIN_REGION_VOXELS).then(|| against_input(&uniform, output));
    let drift = HeldOutDrift {
        body_parent_percent: against_input(&body, parent_output),
        body_percent: against_input(&body, new_output),
        uniform_parent_percent: uniform_drift(parent_output),
        uniform_percent: uniform_drift(new_output),
    };

    let spots = hot_groups(parent_output, &body, body_mean * HOT_FACTOR, MAX_HOT_SPOTS);
    let hot_spot_max_change_percent = spots
        .iter()
        .map(|spot| change_percent(max_over(new_output, spot), max_over(parent_output, spot)))
        .max_by(|a, b| a.abs().total_cmp(&b.abs()));
    let hot_spot_max_beyond_percent = spots
        .iter()
        .map(|spot| {
            beyond_range_percent(max_over(new_output, spot), max_over(parent_output, spot), max_over(input, spot))
        })
        .max_by(|a, b| a.abs().total_cmp(&b.abs()));

    let error_change = error_estimate::estimate(
        evidence.pair,
        evidence.parent,
        evidence.new,
        slices,
        body_level,
        limits.confidence,
        ERROR_BOOTSTRAP_SEED,
    );
    let measures = GateMeasures {
        error_change,
        validation_loss_parent,
        validation_loss,
        body_voxels,
        body_mean_change_percent,
        uniform_voxels,
        uniform_mean_change_percent,
        hot_spots: spots.len(),
        hot_spot_max_change_percent,
        hot_spot_max_beyond_percent,
        drift: Some(drift),
        as_used: Some(as_used::measure(&evidence.as_used)),
    };
    let reasons = reasons(&measures, limits);
    GateVerdict { passed: reasons.is_empty(), reasons, measures, limits: *limits }
}

fn reasons(m: &GateMeasures, limits: &GateLimits) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(ratio) = limits.max_validation_loss_ratio
        && !(m.validation_loss.is_finite() && m.validation_loss <= m.validation_loss_parent * ratio)
    {
        let allowed_loss = m.validation_loss_parent * ratio;
        reasons.push(format!(
            "the held-out Noise2Noise loss is {:.6}, worse than the parent's {:.6} (at most {:.6} allowed)",
            m.validation_loss, m.validation_loss_parent, allowed_loss
        ));
    }
    let change = &m.error_change;
    // NaN (no block with body) never passes.
    let surely_better = change.high_percent < limits.max_error_change_percent;
    if !surely_better {
        reasons.push(format!(
            "the estimated error against the clean image changes by {:+.2} % ({:.0} % interval {:+.2} to {:+.2} % over \
             {} held-out blocks), not surely below {:+.2} %",
            change.change_percent,
            change.confidence * 100.0,
            change.low_percent,
            change.high_percent,
            change.blocks,
            limits.max_error_change_percent
        ));
    }
    if m.body_voxels == 0 {
        reasons.push("the held-out slices show no body to measure SUV in".to_owned());
    }
    if let Some(beyond) = m.hot_spot_max_beyond_percent
        && !within(beyond, limits.hot_spot_max_percent)
    {
        reasons.push(format!(
            "a hot spot's SUVmax moves {beyond:+.2} % beyond the range between the parent's output and the input \
             (limit ±{} %)",
            limits.hot_spot_max_percent
        ));
    }
    if let Some(as_used) = &m.as_used {
        reasons.extend(as_used::reasons(as_used, limits));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::as_used::AsUsedSeries;
    use super::*;
    use crate::science::image::Image3;

    /// A 32×32×4 "patient": body of SUV 1 in a disc, a 3×3×2 lesion of SUV 6.
    fn patient() -> Image3 {
        super::as_used::tests::patient(0.0, 0)
    }

    /// Two noisy halves of `clean` (uniform noise of ±0.3, seeded).
    fn halves(clean: &Image3) -> N2nPair {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut noisy = || Image3 {
            grid: clean.grid,
            data: clean.data.iter().map(|v| if *v > 0.0 { v + rng.random_range(-0.3..0.3) } else { 0.0 }).collect(),
        };
        N2nPair { a: noisy(), b: noisy() }
    }

    /// The same output for both halves.
    fn both(image: &Image3) -> HalfOutputs {
        HalfOutputs { a: image.clone(), b: image.clone() }
    }

    /// Judges `new` against `parent` (each the output for both halves) on `slices`.
    fn judged(
        pair: &N2nPair,
        parent: &HalfOutputs,
        new: &HalfOutputs,
        slices: std::ops::Range<usize>,
        losses: (f64, f64),
    ) -> GateVerdict {
        let evidence = RoundEvidence {
            as_used: AsUsedEvidence { series: AsUsedSeries::HalfA, input: &pair.a, parent: &parent.a, new: &new.a },
            pair,
            parent,
            new,
            held_out: &slices.collect::<Vec<_>>(),
            validation_loss_parent: losses.0,
            validation_loss: losses.1,
        };
        judge(&evidence, &GateLimits { max_validation_loss_ratio: Some(1.0), ..GateLimits::default() })
    }

    #[test]
    fn a_network_surely_closer_to_the_clean_image_passes_with_every_region_found() {
        let clean = patient();
        let pair = halves(&clean);
        // The parent passes the noise through (f(A) = A); the new network removes it.
        let parent = HalfOutputs { a: pair.a.clone(), b: pair.b.clone() };
        let verdict = judged(&pair, &parent, &both(&clean), 0..4, (1.0, 0.9));
        assert!(verdict.passed, "{verdict:?}");
        assert!(verdict.measures.error_change.high_percent < -50.0, "{verdict:?}");
        assert!(verdict.measures.body_voxels > 1500, "{verdict:?}");
        // Regions come from the parent's output, here as noisy as its input.
        assert!(verdict.measures.uniform_voxels > 100, "{verdict:?}");
        assert_eq!(verdict.measures.hot_spots, 1);
    }

    #[test]
    fn the_same_network_is_no_improvement() {
        let clean = patient();
        let pair = halves(&clean);
        let verdict = judged(&pair, &both(&clean), &both(&clean), 0..4, (1.0, 1.0));
        assert!(!verdict.passed);
        assert_eq!(verdict.reasons.len(), 1, "{verdict:?}");
        assert!(verdict.reasons[0].contains("error against the clean image"), "{verdict:?}");
    }

    #[test]
    fn each_broken_limit_gives_its_reason() {
        let clean = patient();
        let pair = halves(&clean);
        let mut new = clean.clone();
        // The lesion loses 20 % of its SUVmax; the body brightens by 5 %.
        for v in &mut new.data {
            if *v > 5.0 {
                *v *= 0.8;
            } else {
                *v *= 1.05;
            }
        }
        let verdict = judged(&pair, &both(&clean), &both(&new), 0..4, (1.0, 1.2));
        assert!(!verdict.passed);
        let text = verdict.reasons.join("\n");
        assert!(text.contains("Noise2Noise loss"), "{text}");
        assert!(text.contains("error against the clean image"), "{text}");
        assert!(text.contains("in the body"), "{text}");
        assert!(text.contains("uniform regions"), "{text}");
        assert!(text.contains("SUVmax moves -20"), "{text}");
    }

    #[test]
    fn only_the_given_slices_count() {
        let clean = patient();
        let pair = halves(&clean);
        let parent = HalfOutputs { a: pair.a.clone(), b: pair.b.clone() };
        let mut new = clean.clone();
        // Slice 0 changes a lot, but the checks on the halves look at slices 2..4 only;
        // only the checks on the series as used (all of half A here) see it.
        for v in &mut new.data[..32 * 32] {
            *v *= 2.0;
        }
        let verdict = judged(&pair, &parent, &both(&new), 2..4, (1.0, 1.0));
        assert!(!verdict.reasons.is_empty(), "{verdict:?}");
        assert!(verdict.reasons.iter().all(|reason| reason.starts_with("on half A")), "{verdict:?}");
    }
}
