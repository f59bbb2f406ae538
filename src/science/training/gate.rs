//! The acceptance gate of a round (docs/learning.md): a new version goes live only if,
//! on the pair's held-out slices, its Noise2Noise validation loss is not worse than its
//! parent's, and its output keeps the quantities a reader measures: mean SUV in the body and
//! in large uniform regions, and SUVmax in hot spots, each within a limit of the parent's
//! output on the same input.
//!
//! Regions come from the parent's output alone: the body is what is clearly above the air,
//! uniform regions are body voxels whose 5×5 neighbourhood varies little, hot spots are
//! connected groups of voxels far above the body's mean.

use std::ops::Range;

use crate::science::image::Image3;

/// Limits a new version must respect; an admin may set them per deployment.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GateLimits {
    /// The new validation loss may be at most this multiple of the parent's (1 = not worse).
    pub max_validation_loss_ratio: f64,
    /// Largest change of mean SUV over the body, percent.
    pub body_mean_percent: f64,
    /// Largest change of mean SUV over the large uniform regions, percent.
    pub uniform_mean_percent: f64,
    /// Largest change of any hot spot's SUVmax, percent.
    pub hot_spot_max_percent: f64,
}

impl Default for GateLimits {
    fn default() -> Self {
        Self {
            max_validation_loss_ratio: 1.0,
            body_mean_percent: 2.0,
            uniform_mean_percent: 3.0,
            hot_spot_max_percent: 10.0,
        }
    }
}

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

/// Uniform regions: local coefficient of variation below this, over a 5×5 window.
const UNIFORM_COV: f64 = 0.15;
/// Fewer uniform voxels than this: no uniform-region measure.
const MIN_UNIFORM_VOXELS: usize = 50;
/// Hot spots: voxels above this multiple of the body's mean.
const HOT_FACTOR: f64 = 3.0;
/// At most this many hot spots (the hottest) are compared.
const MAX_HOT_SPOTS: usize = 10;

/// Judges `new_output` against `parent_output` (the two networks on the same input) over
/// `slices`, with the two validation losses.
pub fn judge(
    parent_output: &Image3,
    new_output: &Image3,
    slices: &Range<usize>,
    validation_loss_parent: f64,
    validation_loss: f64,
    limits: &GateLimits,
) -> GateVerdict {
    let grid = parent_output.grid;
    let plane = grid.pixels_per_slice();
    let in_slices = |i: usize| slices.contains(&(i / plane));
    let body = body_mask(parent_output, &in_slices);
    let body_voxels = body.iter().filter(|b| **b).count();
    let body_mean = parent_output.masked_mean(&body);
    let body_mean_change_percent = change_percent(new_output.masked_mean(&body), body_mean);

    let uniform = uniform_mask(parent_output, &body, body_mean * HOT_FACTOR);
    let uniform_voxels = uniform.iter().filter(|u| **u).count();
    let uniform_mean_change_percent = (uniform_voxels >= MIN_UNIFORM_VOXELS)
        .then(|| change_percent(new_output.masked_mean(&uniform), parent_output.masked_mean(&uniform)));

    let spots = hot_spots(parent_output, &body, body_mean * HOT_FACTOR);
    let hot_spot_max_change_percent = spots
        .iter()
        .map(|spot| {
            let max = |image: &Image3| spot.iter().map(|i| f64::from(image.data[*i])).fold(f64::MIN, f64::max);
            change_percent(max(new_output), max(parent_output))
        })
        .max_by(|a, b| a.abs().total_cmp(&b.abs()));

    let measures = GateMeasures {
        validation_loss_parent,
        validation_loss,
        body_voxels,
        body_mean_change_percent,
        uniform_voxels,
        uniform_mean_change_percent,
        hot_spots: spots.len(),
        hot_spot_max_change_percent,
    };
    let reasons = reasons(&measures, limits);
    GateVerdict { passed: reasons.is_empty(), reasons, measures, limits: *limits }
}

fn reasons(m: &GateMeasures, limits: &GateLimits) -> Vec<String> {
    let mut reasons = Vec::new();
    let allowed_loss = m.validation_loss_parent * limits.max_validation_loss_ratio;
    if !(m.validation_loss.is_finite() && m.validation_loss <= allowed_loss) {
        reasons.push(format!(
            "the held-out Noise2Noise loss is {:.6}, worse than the parent's {:.6} (at most {:.6} allowed)",
            m.validation_loss, m.validation_loss_parent, allowed_loss
        ));
    }
    if m.body_voxels == 0 {
        reasons.push("the held-out slices show no body to measure SUV in".to_owned());
    } else if !within(m.body_mean_change_percent, limits.body_mean_percent) {
        reasons.push(format!(
            "mean SUV in the body moves {:+.2} % against the parent's output (limit ±{} %)",
            m.body_mean_change_percent, limits.body_mean_percent
        ));
    }
    if let Some(change) = m.uniform_mean_change_percent
        && !within(change, limits.uniform_mean_percent)
    {
        reasons.push(format!(
            "mean SUV in large uniform regions moves {change:+.2} % against the parent's output (limit ±{} %)",
            limits.uniform_mean_percent
        ));
    }
    if let Some(change) = m.hot_spot_max_change_percent
        && !within(change, limits.hot_spot_max_percent)
    {
        reasons.push(format!(
            "a hot spot's SUVmax moves {change:+.2} % against the parent's output (limit ±{} %)",
            limits.hot_spot_max_percent
        ));
    }
    reasons
}

/// |change| ≤ limit; false for NaN, so a measure that cannot be taken never passes.
fn within(change: f64, limit: f64) -> bool {
    change.abs() <= limit
}

fn change_percent(new: f64, parent: f64) -> f64 {
    if parent.abs() < f64::EPSILON {
        if new.abs() < f64::EPSILON { 0.0 } else { f64::INFINITY }
    } else {
        (new / parent - 1.0) * 100.0
    }
}

/// Voxels clearly above the air: above a quarter of the median of the voxels that carry
/// any activity (above 2 % of the maximum).
fn body_mask(image: &Image3, in_slices: &dyn Fn(usize) -> bool) -> Vec<bool> {
    let peak = image.data.iter().enumerate().filter(|(i, _)| in_slices(*i)).map(|(_, v)| *v).fold(0.0f32, f32::max);
    let mut active: Vec<f32> =
        image.data.iter().enumerate().filter(|(i, v)| in_slices(*i) && **v > 0.02 * peak).map(|(_, v)| *v).collect();
    if active.is_empty() || peak <= 0.0 {
        return vec![false; image.data.len()];
    }
    let middle = active.len() / 2;
    let median = *active.select_nth_unstable_by(middle, f32::total_cmp).1;
    let threshold = 0.25 * median;
    image.data.iter().enumerate().map(|(i, v)| in_slices(i) && *v > threshold).collect()
}

/// Body voxels, below `hot`, whose in-plane 5×5 neighbourhood lies in the body and has a
/// coefficient of variation below [`UNIFORM_COV`].
fn uniform_mask(image: &Image3, body: &[bool], hot: f64) -> Vec<bool> {
    let size = image.grid.size;
    let plane = image.grid.pixels_per_slice();
    let mut uniform = vec![false; image.data.len()];
    for (i, flag) in uniform.iter_mut().enumerate() {
        if !body[i] || f64::from(image.data[i]) >= hot {
            continue;
        }
        let (z, y, x) = (i / plane, (i % plane) / size, i % size);
        if y < 2 || x < 2 || y + 2 >= size || x + 2 >= size {
            continue;
        }
        let (mut sum, mut squares, mut inside) = (0.0, 0.0, true);
        for dy in 0..5 {
            for dx in 0..5 {
                let j = z * plane + (y + dy - 2) * size + (x + dx - 2);
                inside &= body[j];
                let v = f64::from(image.data[j]);
                sum += v;
                squares += v * v;
            }
        }
        let mean = sum / 25.0;
        let variance = (squares / 25.0 - mean * mean).max(0.0);
        *flag = inside && mean > 0.0 && variance.sqrt() / mean < UNIFORM_COV;
    }
    uniform
}

/// Connected groups (6-neighbourhood) of body voxels above `hot`, the hottest first, at
/// most [`MAX_HOT_SPOTS`].
fn hot_spots(image: &Image3, body: &[bool], hot: f64) -> Vec<Vec<usize>> {
    let size = image.grid.size;
    let plane = image.grid.pixels_per_slice();
    let is_hot = |i: usize| body[i] && f64::from(image.data[i]) > hot;
    let mut seen = vec![false; image.data.len()];
    let mut spots = Vec::new();
    for start in 0..image.data.len() {
        if seen[start] || !is_hot(start) {
            continue;
        }
        let mut spot = Vec::new();
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(i) = stack.pop() {
            spot.push(i);
            let (z, y, x) = (i / plane, (i % plane) / size, i % size);
            let mut neighbours = Vec::with_capacity(6);
            if x > 0 {
                neighbours.push(i - 1);
            }
            if x + 1 < size {
                neighbours.push(i + 1);
            }
            if y > 0 {
                neighbours.push(i - size);
            }
            if y + 1 < size {
                neighbours.push(i + size);
            }
            if z > 0 {
                neighbours.push(i - plane);
            }
            if i + plane < image.data.len() {
                neighbours.push(i + plane);
            }
            for j in neighbours {
                if !seen[j] && is_hot(j) {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        spots.push(spot);
    }
    let peak = |spot: &Vec<usize>| spot.iter().map(|i| image.data[*i]).fold(f32::MIN, f32::max);
    spots.sort_by(|a, b| peak(b).total_cmp(&peak(a)));
    spots.truncate(MAX_HOT_SPOTS);
    spots
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::image::Grid;

    /// A 32×32×4 "patient": body of SUV 1 in a disc, a 3×3×2 lesion of SUV 6.
    fn patient() -> Image3 {
        let grid = Grid::new(32, 4);
        let mut image = Image3::zeros(grid);
        for z in 0..4 {
            for y in 0..32 {
                for x in 0..32 {
                    let (dx, dy) = (x as f64 - 15.5, y as f64 - 15.5);
                    if dx * dx + dy * dy < 13.0 * 13.0 {
                        image.data[(z * 32 + y) * 32 + x] = 1.0;
                    }
                }
            }
        }
        for z in 1..3 {
            for y in 10..13 {
                for x in 10..13 {
                    image.data[(z * 32 + y) * 32 + x] = 6.0;
                }
            }
        }
        image
    }

    #[test]
    fn the_same_output_passes_with_every_region_found() {
        let parent = patient();
        let verdict = judge(&parent, &parent, &(0..4), 1.0, 0.9, &GateLimits::default());
        assert!(verdict.passed, "{verdict:?}");
        assert!(verdict.measures.body_voxels > 1500, "{verdict:?}");
        assert!(verdict.measures.uniform_voxels > 1000, "{verdict:?}");
        assert_eq!(verdict.measures.hot_spots, 1);
        assert_eq!(verdict.measures.hot_spot_max_change_percent, Some(0.0));
    }

    #[test]
    fn each_broken_limit_gives_its_reason() {
        let parent = patient();
        let mut new = parent.clone();
        // The lesion loses 20 % of its SUVmax; the body brightens by 5 %.
        for v in &mut new.data {
            if *v > 5.0 {
                *v *= 0.8;
            } else {
                *v *= 1.05;
            }
        }
        let verdict = judge(&parent, &new, &(0..4), 1.0, 1.2, &GateLimits::default());
        assert!(!verdict.passed);
        let text = verdict.reasons.join("\n");
        assert!(text.contains("Noise2Noise loss"), "{text}");
        assert!(text.contains("in the body"), "{text}");
        assert!(text.contains("uniform regions"), "{text}");
        assert!(text.contains("SUVmax moves -20"), "{text}");
    }

    #[test]
    fn only_the_given_slices_count() {
        let parent = patient();
        let mut new = parent.clone();
        // Slice 0 changes a lot, but the gate looks at slices 2..4 only.
        for v in &mut new.data[..32 * 32] {
            *v *= 2.0;
        }
        let verdict = judge(&parent, &new, &(2..4), 1.0, 1.0, &GateLimits::default());
        assert!(verdict.passed, "{verdict:?}");
    }
}
