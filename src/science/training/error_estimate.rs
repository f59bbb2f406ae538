//! How much closer to the clean image a new network is than its parent, estimated from the
//! two N2N halves alone, with a confidence bound.
//!
//! For independent halves A and B of one scan, with clean image x, E|f(A) − B|² =
//! E|f(A) − x|² + E|B − x|²: the N2N loss is the network's error plus the noise of the
//! target half. The second term is the same for the parent and the new network, so the
//! difference of their N2N losses estimates the difference of their errors with the noise
//! floor removed; the floor itself is estimated as |A − B|² / 2 and taken off the parent's
//! loss to give its error. The held-out slices are cut into square blocks; blocks are drawn
//! with replacement (a paired bootstrap: the same draws for both networks) and the
//! percentiles of the relative change give its confidence interval.
//!
//! ```
//! use petal::science::training::error_estimate::BlockTerms;
//! // One block where the new network's N2N loss is lower by 0.1 and the parent's error
//! // (its loss less the noise floor) is 0.4: the error falls by 25 %.
//! let block = BlockTerms { parent_loss: 1.0, new_loss: 0.9, noise_floor: 0.6 };
//! assert!((BlockTerms::change_percent(&[block]) + 25.0).abs() < 1e-9);
//! ```

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::pair_source::N2nPair;
use crate::science::image::Image3;

/// Side of the square blocks (pixels): several times OSEM's noise correlation length (a
/// pixel or two), so blocks are nearly independent, and small enough that even a small
/// held-out block of slices gives dozens of them.
pub const BLOCK_PIXELS: usize = 8;
/// Bootstrap resamples.
const RESAMPLES: usize = 2000;

/// The outputs of one network for both halves.
#[derive(Debug, Clone)]
pub struct HalfOutputs {
    /// f(A)
    pub a: Image3,
    /// f(B)
    pub b: Image3,
}

/// One block's sums: the N2N losses of both networks (both directions) and the noise floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockTerms {
    pub parent_loss: f64,
    pub new_loss: f64,
    pub noise_floor: f64,
}

impl BlockTerms {
    /// The relative change of the error over `blocks`, percent (negative is better).
    pub fn change_percent(blocks: &[BlockTerms]) -> f64 {
        let (mut difference, mut parent_error) = (0.0, 0.0);
        for block in blocks {
            difference += block.new_loss - block.parent_loss;
            parent_error += block.parent_loss - block.noise_floor;
        }
        difference / parent_error.max(f64::MIN_POSITIVE) * 100.0
    }
}

/// The estimate and its interval.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorChange {
    /// Blocks that hold body (only they count).
    pub blocks: usize,
    /// Share of the parent's N2N loss that is the target's noise, percent.
    pub noise_share_percent: f64,
    /// Estimated change of the error against the clean image, percent (negative is better).
    pub change_percent: f64,
    /// The bootstrap interval of the change at `confidence` (two-sided).
    pub low_percent: f64,
    pub high_percent: f64,
    pub confidence: f64,
}

/// Estimates the change from `parent` to `new` on `slices` of `pair`. Blocks whose mean
/// input is below `body_level` (air) are left out.
pub fn estimate(
    pair: &N2nPair,
    parent: &HalfOutputs,
    new: &HalfOutputs,
    slices: &[usize],
    body_level: f32,
    confidence: f64,
    seed: u64,
) -> ErrorChange {
    let blocks = block_terms(pair, parent, new, slices, body_level);
    let change_percent = BlockTerms::change_percent(&blocks);
    let noise: f64 = blocks.iter().map(|b| b.noise_floor).sum();
    let parent_loss: f64 = blocks.iter().map(|b| b.parent_loss).sum();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draws = Vec::with_capacity(RESAMPLES);
    let mut resample = Vec::with_capacity(blocks.len());
    if !blocks.is_empty() {
        for _ in 0..RESAMPLES {
            resample.clear();
            resample.extend((0..blocks.len()).map(|_| blocks[rng.random_range(0..blocks.len())]));
            draws.push(BlockTerms::change_percent(&resample));
        }
    }
    draws.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    let at = |q: f64| draws.get(((draws.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    ErrorChange {
        blocks: blocks.len(),
        noise_share_percent: noise / parent_loss.max(f64::MIN_POSITIVE) * 100.0,
        change_percent,
        low_percent: at(tail),
        high_percent: at(1.0 - tail),
        confidence,
    }
}

/// Per block of `slices` holding body: the sums of squared N2N differences of both networks
/// (f(A) against B and f(B) against A) and of the noise floor |A − B|² (its expectation is
/// twice one half's noise, once per direction).
fn block_terms(
    pair: &N2nPair,
    parent: &HalfOutputs,
    new: &HalfOutputs,
    slices: &[usize],
    body_level: f32,
) -> Vec<BlockTerms> {
    let grid = pair.a.grid;
    let size = grid.size;
    let per_side = size.div_ceil(BLOCK_PIXELS);
    let mut blocks = Vec::new();
    for &z in slices {
        for by in 0..per_side {
            for bx in 0..per_side {
                let mut terms = BlockTerms { parent_loss: 0.0, new_loss: 0.0, noise_floor: 0.0 };
                let (mut input_sum, mut count) = (0.0f64, 0usize);
                for y in by * BLOCK_PIXELS..((by + 1) * BLOCK_PIXELS).min(size) {
                    for x in bx * BLOCK_PIXELS..((bx + 1) * BLOCK_PIXELS).min(size) {
                        let i = (z * size + y) * size + x;
                        let (a, b) = (f64::from(pair.a.data[i]), f64::from(pair.b.data[i]));
                        let squared = |output: &HalfOutputs| {
                            (f64::from(output.a.data[i]) - b).powi(2) + (f64::from(output.b.data[i]) - a).powi(2)
                        };
                        terms.parent_loss += squared(parent);
                        terms.new_loss += squared(new);
                        terms.noise_floor += (a - b).powi(2);
                        input_sum += (a + b) / 2.0;
                        count += 1;
                    }
                }
                if count > 0 && input_sum / count as f64 > f64::from(body_level) {
                    blocks.push(terms);
                }
            }
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::image::Grid;
    use rand_distr::{Distribution, Normal};

    /// Halves of a flat image of 2 with noise σ = 0.5, and outputs with a chosen error.
    fn halves(seed: u64) -> (N2nPair, Image3) {
        let grid = Grid::new(32, 4);
        let clean = Image3 { grid, data: vec![2.0; grid.voxels()] };
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0f32, 0.5).expect("normal");
        let mut noisy = || Image3 { grid, data: clean.data.iter().map(|v| v + noise.sample(&mut rng)).collect() };
        (N2nPair { a: noisy(), b: noisy() }, clean)
    }

    /// The clean image off by a constant: an error of `offset²` per voxel.
    fn outputs(clean: &Image3, offset: f32) -> HalfOutputs {
        let shifted = Image3 { grid: clean.grid, data: clean.data.iter().map(|v| v + offset).collect() };
        HalfOutputs { a: shifted.clone(), b: shifted }
    }

    #[test]
    fn a_network_closer_to_the_clean_image_is_found_better_with_confidence() {
        let (pair, clean) = halves(3);
        // Parent error 0.3² = 0.09, new 0.2² = 0.04: the error falls by 55.6 %.
        let change = estimate(&pair, &outputs(&clean, 0.3), &outputs(&clean, 0.2), &[0, 1, 2, 3], 0.5, 0.9, 1);
        assert_eq!(change.blocks, 64);
        assert!((change.change_percent + 55.6).abs() < 8.0, "{change:?}");
        assert!(change.high_percent < 0.0, "the whole interval shows the gain: {change:?}");
        // The noise (0.25 per half) is most of the parent's loss (0.25 + 0.09).
        assert!((change.noise_share_percent - 73.5).abs() < 5.0, "{change:?}");
    }

    #[test]
    fn the_same_network_is_undecided_and_a_worse_one_is_found_worse() {
        let (pair, clean) = halves(4);
        let same = estimate(&pair, &outputs(&clean, 0.2), &outputs(&clean, 0.2), &[0, 1, 2, 3], 0.5, 0.9, 1);
        assert_eq!(same.change_percent, 0.0);
        assert!(same.high_percent >= 0.0, "{same:?}");
        let worse = estimate(&pair, &outputs(&clean, 0.2), &outputs(&clean, 0.3), &[0, 1, 2, 3], 0.5, 0.9, 1);
        assert!(worse.low_percent > 0.0, "{worse:?}");
    }
}
