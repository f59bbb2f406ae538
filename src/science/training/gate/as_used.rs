//! The gate's checks on the series as it is used: the patient's full-count series (or,
//! when the study holds none, half A), denoised by the parent and by the new network, each
//! compared with the **input** as well as with the other output.
//!
//! The error against the clean image cannot be estimated here (that needs two independent
//! realizations, so it stays on the halves); these are the sanity checks a reader would
//! make on the images they read:
//!
//! - **body and uniform-region means** must stay near the input's: a drift beyond the limit
//!   fails only when it is larger than the parent's own drift;
//! - **hot spots found in the input** (groups far above the body's mean whose SUVpeak, the
//!   mean over 1 cm³, is clearly hot in the input too): their SUVpeak must not move further
//!   from the input's than the parent's did, beyond a limit in percentage points, and their
//!   SUVmax must not leave the range between the parent's and the input's by more than a
//!   limit;
//! - **noise** (local deviation over the uniform regions) may rise above the parent's only
//!   while it stays below a share of the input's;
//! - **new hot spots** (hot groups of the output where the input's SUVpeak is not hot):
//!   no more than the parent's output has.
//!
//! Every check compares the new network with the parent on the same input, so a limit is
//! broken only by what the round changed.

use super::limits::{
    GateLimits, HOT_FACTOR, INPUT_PEAK_FACTOR, MAX_HOT_SPOTS, at_most, beyond_range_percent, change_percent, drifted,
    within,
};
use crate::science::image::Image3;
use crate::science::regions::{
    MIN_REGION_VOXELS, body_mask, connected_groups, hot_groups, hottest, local_noise_percent, max_over, peak_mean,
    uniform_mask,
};

/// Which series the checks ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsUsedSeries {
    /// A full-count series of the pair's study, on the pair's grid: what gets denoised.
    FullCount,
    /// Half A itself, for a pair without a full-count companion.
    HalfA,
}

impl AsUsedSeries {
    pub fn describe(self) -> &'static str {
        match self {
            Self::FullCount => "the full-count series",
            Self::HalfA => "half A",
        }
    }
}

/// One input series and both networks' outputs for it.
#[derive(Debug, Clone, Copy)]
pub struct AsUsedEvidence<'a> {
    pub series: AsUsedSeries,
    pub input: &'a Image3,
    pub parent: &'a Image3,
    pub new: &'a Image3,
}

/// What the checks measured (percent unless named otherwise).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AsUsedMeasures {
    pub series: AsUsedSeries,
    pub body_voxels: usize,
    /// The parent's output's mean over the body against the input's.
    pub body_mean_drift_parent_percent: f64,
    /// The new output's mean over the body against the input's.
    pub body_mean_drift_percent: f64,
    pub uniform_voxels: usize,
    /// The same for the uniform regions; `None` when too few voxels are uniform.
    pub uniform_mean_drift_parent_percent: Option<f64>,
    pub uniform_mean_drift_percent: Option<f64>,
    /// Hot spots found in the input (at most the 10 with the highest SUVpeak).
    pub input_hot_spots: usize,
    /// Over the input's hot spots, the largest of (|new SUVpeak − input's| − |parent's
    /// SUVpeak − input's|) / input's, in percentage points: how much further from the input
    /// the new network moved a hot spot's SUVpeak than the parent did.
    pub hot_spot_peak_further_points: Option<f64>,
    /// Over the input's hot spots, the largest move (signed) of SUVmax beyond the range
    /// between the parent's output and the input.
    pub hot_spot_max_beyond_percent: Option<f64>,
    /// Local noise over the uniform regions.
    pub noise_input_percent: Option<f64>,
    pub noise_parent_percent: Option<f64>,
    pub noise_percent: Option<f64>,
    /// Hot groups in each output that the input does not show.
    pub new_hot_spots_parent: usize,
    pub new_hot_spots: usize,
}

/// An output's hot group is new where the input's SUVpeak stays below this multiple.
const NEW_SPOT_INPUT_PEAK_FACTOR: f64 = 1.5;

/// Measures the new output and the parent's against the input on the whole series.
pub fn measure(evidence: &AsUsedEvidence<'_>) -> AsUsedMeasures {
    let AsUsedEvidence { series, input, parent, new } = *evidence;
    // Regions from the parent's output: the input is too noisy to outline them.
    let (body, _) = body_mask(parent, &|_| true);
    let body_voxels = body.iter().filter(|b| **b).count();
    let body_mean = input.masked_mean(&body);
    let hot = body_mean * HOT_FACTOR;

    let both =
        Image3 { grid: parent.grid, data: parent.data.iter().zip(&new.data).map(|(p, n)| 0.5 * (p + n)).collect() };
    let uniform = uniform_mask(&both, &body, hot);
    let uniform_voxels = uniform.iter().filter(|u| **u).count();
    let uniform_drift = |output: &Image3| {
        (uniform_voxels >= MIN_REGION_VOXELS)
            .then(|| change_percent(output.masked_mean(&uniform), input.masked_mean(&uniform)))
    };

    let spots: Vec<(Vec<usize>, usize, f64)> = hot_groups(input, &body, hot, usize::MAX)
        .into_iter()
        .filter_map(|group| {
            let centre = hottest(input, &group)?;
            let peak = peak_mean(input, centre);
            (peak >= INPUT_PEAK_FACTOR * body_mean).then_some((group, centre, peak))
        })
        .take(MAX_HOT_SPOTS)
        .collect();
    let hot_spot_peak_further_points = spots
        .iter()
        .map(|(_, centre, peak)| {
            let distance = |output: &Image3| (peak_mean(output, *centre) - peak).abs() / peak * 100.0;
            distance(new) - distance(parent)
        })
        .reduce(f64::max);
    let hot_spot_max_beyond_percent = spots
        .iter()
        .map(|(group, _, _)| {
            beyond_range_percent(max_over(new, group), max_over(parent, group), max_over(input, group))
        })
        .max_by(|a, b| a.abs().total_cmp(&b.abs()));

    let new_spots = |output: &Image3| {
        connected_groups(output, |i| body[i] && f64::from(output.data[i]) > hot)
            .into_iter()
            .filter(|group| {
                group.len() >= 2
                    && hottest(output, group)
                        .is_some_and(|i| peak_mean(input, i) < NEW_SPOT_INPUT_PEAK_FACTOR * body_mean)
            })
            .count()
    };
    AsUsedMeasures {
        series,
        body_voxels,
        body_mean_drift_parent_percent: change_percent(parent.masked_mean(&body), body_mean),
        body_mean_drift_percent: change_percent(new.masked_mean(&body), body_mean),
        uniform_voxels,
        uniform_mean_drift_parent_percent: uniform_drift(parent),
        uniform_mean_drift_percent: uniform_drift(new),
        input_hot_spots: spots.len(),
        hot_spot_peak_further_points,
        hot_spot_max_beyond_percent,
        noise_input_percent: local_noise_percent(input, &uniform),
        noise_parent_percent: local_noise_percent(parent, &uniform),
        noise_percent: local_noise_percent(new, &uniform),
        new_hot_spots_parent: new_spots(parent),
        new_hot_spots: new_spots(new),
    }
}

/// The limits the measures break, one sentence each.
pub fn reasons(m: &AsUsedMeasures, limits: &GateLimits) -> Vec<String> {
    let on = m.series.describe();
    let mut reasons = Vec::new();
    if m.body_voxels == 0 {
        reasons.push(format!("{on} shows no body to measure SUV in"));
    } else if drifted(m.body_mean_drift_percent, m.body_mean_drift_parent_percent, limits.body_mean_percent) {
        reasons.push(format!(
            "on {on}, mean SUV in the body moves {:+.2} % from the input's (the parent's {:+.2} %, limit ±{} %)",
            m.body_mean_drift_percent, m.body_mean_drift_parent_percent, limits.body_mean_percent
        ));
    }
    if let (Some(new), Some(parent)) = (m.uniform_mean_drift_percent, m.uniform_mean_drift_parent_percent)
        && drifted(new, parent, limits.uniform_mean_percent)
    {
        reasons.push(format!(
            "on {on}, mean SUV in large uniform regions moves {new:+.2} % from the input's (the parent's {parent:+.2} \
             %, limit ±{} %)",
            limits.uniform_mean_percent
        ));
    }
    if let Some(further) = m.hot_spot_peak_further_points
        && !at_most(further, limits.hot_spot_peak_points)
    {
        reasons.push(format!(
            "on {on}, a hot spot of the input has its SUVpeak moved {further:.2} points further from the input's than \
             the parent moved it (limit {} points)",
            limits.hot_spot_peak_points
        ));
    }
    if let Some(beyond) = m.hot_spot_max_beyond_percent
        && !within(beyond, limits.hot_spot_max_percent)
    {
        reasons.push(format!(
            "on {on}, a hot spot of the input has its SUVmax moved {beyond:+.2} % beyond the range between the \
             parent's output and the input (limit ±{} %)",
            limits.hot_spot_max_percent
        ));
    }
    if let (Some(new), Some(parent), Some(input)) = (m.noise_percent, m.noise_parent_percent, m.noise_input_percent) {
        let allowed = parent.max(input * limits.noise_share_percent / 100.0);
        if !at_most(new, allowed) {
            reasons.push(format!(
                "on {on}, the noise in uniform regions rises to {new:.2} % (the parent's {parent:.2} %, the input's \
                 {input:.2} %; at most {allowed:.2} % allowed)"
            ));
        }
    }
    if m.new_hot_spots > m.new_hot_spots_parent {
        reasons.push(format!(
            "on {on}, the output shows {} hot spots the input does not (the parent's {})",
            m.new_hot_spots, m.new_hot_spots_parent
        ));
    }
    reasons
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::science::image::Grid;

    /// A 32×32×4 body of SUV 1 (4 mm voxels) with a 3×3×2 lesion of SUV 6; `noise` adds a
    /// seeded ±`noise` uniform deviation inside the body.
    pub(in super::super) fn patient(noise: f32, seed: u64) -> Image3 {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut grid = Grid::new(32, 4);
        grid.pixel_mm = 4.0;
        grid.slice_mm = 4.0;
        let mut image = Image3::zeros(grid);
        for z in 0..4 {
            for y in 0..32 {
                for x in 0..32 {
                    let (dx, dy) = (x as f64 - 15.5, y as f64 - 15.5);
                    if dx * dx + dy * dy < 13.0 * 13.0 {
                        let lesion = (1..3).contains(&z) && (10..13).contains(&y) && (10..13).contains(&x);
                        let value = if lesion { 6.0 } else { 1.0 };
                        image.data[(z * 32 + y) * 32 + x] = value + noise * rng.random_range(-1.0..1.0);
                    }
                }
            }
        }
        image
    }

    fn checked(input: &Image3, parent: &Image3, new: &Image3) -> (AsUsedMeasures, Vec<String>) {
        let evidence = AsUsedEvidence { series: AsUsedSeries::FullCount, input, parent, new };
        let measures = measure(&evidence);
        let reasons = reasons(&measures, &GateLimits::default());
        (measures, reasons)
    }

    #[test]
    fn a_quieter_output_that_keeps_the_input_passes_and_finds_the_lesion() {
        let input = patient(0.3, 1);
        let parent = patient(0.1, 2);
        let new = patient(0.05, 3);
        let (measures, reasons) = checked(&input, &parent, &new);
        assert!(reasons.is_empty(), "{reasons:?} {measures:?}");
        assert_eq!(measures.input_hot_spots, 1, "{measures:?}");
        assert!(measures.noise_percent < measures.noise_parent_percent, "{measures:?}");
        assert!(measures.noise_parent_percent < measures.noise_input_percent, "{measures:?}");
        assert_eq!(measures.new_hot_spots, 0, "{measures:?}");
    }

    #[test]
    fn each_broken_limit_gives_its_reason() {
        let input = patient(0.3, 1);
        let parent = patient(0.05, 2);
        // Noisier than the parent, the lesion flattened to 4, the body 5 % brighter, and a
        // hot pair of voxels where the input has none.
        let mut new = patient(0.3, 3);
        for v in &mut new.data {
            if *v > 4.0 {
                *v = 4.0;
            }
            *v *= 1.05;
        }
        new.data[(2 * 32 + 20) * 32 + 20] = 9.0;
        new.data[(2 * 32 + 20) * 32 + 21] = 9.0;
        let (measures, reasons) = checked(&input, &parent, &new);
        let text = reasons.join("\n");
        for expected in
            ["in the body", "uniform regions moves", "SUVpeak moved", "SUVmax moved", "noise", "hot spots the input"]
        {
            assert!(text.contains(expected), "{expected}: {text}\n{measures:?}");
        }
        assert!(text.starts_with("on the full-count series"), "{text}");
    }

    #[test]
    fn recovering_the_contrast_the_parent_smoothed_away_passes() {
        let input = patient(0.3, 1);
        // The parent flattened the lesion to 60 % of its SUV; the new network keeps it.
        let mut parent = patient(0.05, 2);
        for v in &mut parent.data {
            if *v > 4.0 {
                *v *= 0.6;
            }
        }
        let new = patient(0.05, 3);
        let (measures, reasons) = checked(&input, &parent, &new);
        assert!(reasons.is_empty(), "{reasons:?} {measures:?}");
        assert_eq!(measures.hot_spot_max_beyond_percent, Some(0.0), "{measures:?}");
        assert!(measures.hot_spot_peak_further_points.is_some_and(|p| p < -10.0), "{measures:?}");
    }

    #[test]
    fn a_drift_the_parent_shares_is_not_the_rounds_fault() {
        let input = patient(0.3, 1);
        let mut parent = patient(0.05, 2);
        for v in &mut parent.data {
            *v *= 1.04;
        }
        let mut new = parent.clone();
        for v in &mut new.data {
            *v *= 0.995;
        }
        let (measures, reasons) = checked(&input, &parent, &new);
        assert!(measures.body_mean_drift_percent > 2.0, "{measures:?}");
        assert!(reasons.is_empty(), "{reasons:?}");
    }
}
