//! Paired bootstrap comparisons of two networks on the same test data: realizations and
//! lesions are drawn with replacement, the same draws for both networks, and the 95 %
//! percentile interval of the difference says which is better or that the data cannot
//! decide.
//!
//! ```
//! use petal::science::evaluation::paper::bootstrap::{Interval, Verdict};
//! let interval = Interval { estimate: -1.0, low: -1.5, high: -0.2 };
//! assert_eq!(interval.verdict(), Verdict::FirstBetter);
//! ```

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::scores::Scores;

/// An estimate of `first − second` and its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// What an interval of `first − second` (lower is better) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    FirstBetter,
    SecondBetter,
    Undecided,
}

impl Interval {
    pub fn verdict(&self) -> Verdict {
        if self.high < 0.0 {
            Verdict::FirstBetter
        } else if self.low > 0.0 {
            Verdict::SecondBetter
        } else {
            Verdict::Undecided
        }
    }
}

/// `first` against `second` on |lesion bias| and on liver CoV (both: lower is better).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub first: String,
    pub second: String,
    pub data: crate::science::simulation::ReconVersion,
    pub absolute_bias: Interval,
    pub absolute_bias_verdict: Verdict,
    pub cov: Interval,
    pub cov_verdict: Verdict,
}

/// The 2.5th and 97.5th percentiles of `values` (sorted in place).
fn percentile_interval(estimate: f64, values: &mut [f64]) -> Interval {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Interval { estimate, low: at(0.025), high: at(0.975) }
}

/// Compares two networks' scores on the same data with `resamples` paired draws.
pub fn compare(first: &Scores, second: &Scores, resamples: usize, seed: u64) -> Comparison {
    let realizations = first.lesion_errors.len().min(second.lesion_errors.len());
    let lesions = first.lesion_count().min(second.lesion_count());
    let all_r: Vec<usize> = (0..realizations).collect();
    let all_l: Vec<usize> = (0..lesions).collect();
    let bias_estimate = first.absolute_bias_of(&all_r, &all_l) - second.absolute_bias_of(&all_r, &all_l);
    let cov_estimate = first.cov_of(&all_r) - second.cov_of(&all_r);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut bias, mut cov) = (Vec::with_capacity(resamples), Vec::with_capacity(resamples));
    for _ in 0..resamples.max(1) {
        let r: Vec<usize> = (0..realizations).map(|_| rng.random_range(0..realizations)).collect();
        let l: Vec<usize> = (0..lesions).map(|_| rng.random_range(0..lesions)).collect();
        bias.push(first.absolute_bias_of(&r, &l) - second.absolute_bias_of(&r, &l));
        cov.push(first.resampled_cov_of(&r) - second.resampled_cov_of(&r));
    }
    let absolute_bias = percentile_interval(bias_estimate, &mut bias);
    let cov = percentile_interval(cov_estimate, &mut cov);
    Comparison {
        first: first.network.clone(),
        second: second.network.clone(),
        data: first.data,
        absolute_bias,
        absolute_bias_verdict: absolute_bias.verdict(),
        cov,
        cov_verdict: cov.verdict(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::simulation::ReconVersion;

    fn scores(name: &str, errors: Vec<Vec<f64>>, liver: Vec<Vec<f32>>) -> Scores {
        Scores {
            network: name.into(),
            data: ReconVersion::V2,
            lesion_bias: Vec::new(),
            mean_lesion_bias: 0.0,
            truth_bias: Vec::new(),
            mean_truth_bias: 0.0,
            contrast_recovery: Vec::new(),
            liver_cov: 0.0,
            psnr: 0.0,
            lesion_errors: errors,
            liver_values: liver,
            sample_slice: Vec::new(),
        }
    }

    #[test]
    fn a_clearly_better_network_wins_and_a_tie_is_undecided() {
        // Six realizations, two lesions. `good` is off by ≈1 %, `bad` by ≈10 %; their
        // livers spread over ±1 and ±5 around 10.
        let wobble = |r: usize| if r.is_multiple_of(2) { 1.0 } else { -1.0 };
        let good_errors = (0..6).map(|r| vec![-1.0 + 0.2 * wobble(r), -1.2]).collect();
        let bad_errors = (0..6).map(|r| vec![-10.0 + wobble(r), -9.0]).collect();
        let liver = |spread: f32| (0..6).map(|r| vec![10.0 + spread * (r as f32 - 2.5) / 2.5; 4]).collect();
        let good = scores("good", good_errors, liver(1.0));
        let bad = scores("bad", bad_errors, liver(5.0));
        let comparison = compare(&good, &bad, 500, 7);
        assert_eq!(comparison.absolute_bias_verdict, Verdict::FirstBetter, "{comparison:?}");
        assert_eq!(comparison.cov_verdict, Verdict::FirstBetter, "{comparison:?}");
        assert!(comparison.absolute_bias.low <= comparison.absolute_bias.estimate);
        assert!(comparison.absolute_bias.estimate <= comparison.absolute_bias.high);
        let twin = compare(&good, &good, 200, 7);
        assert_eq!(twin.absolute_bias_verdict, Verdict::Undecided);
        assert_eq!(twin.cov.estimate, 0.0);
    }
}
