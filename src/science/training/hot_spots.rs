//! Where a round draws patches around hot spots: the hot spots a reader would measure,
//! found in the patient's own halves (a round never knows where lesions are).
//!
//! Uniform patch draws almost never hold a small lesion: a round then learns the patient's
//! noise texture from organs and background, and may smooth small hot spots further than
//! its parent did. With `hot_spot_share` > 0 that share of the patches is drawn so that it
//! holds a voxel of one of these hot spots, each spot equally often, as `petal train-base`
//! draws patches around the simulator's lesions.
//!
//! A hot spot is defined as the gate defines one in the input: a connected group of body
//! voxels above [`HOT_FACTOR`] times the body's mean whose SUVpeak is at least
//! [`INPUT_PEAK_FACTOR`] times it. It is found in the mean of the two halves, which has the noise
//! of the full-count scan, so that noise in one half does not make spots of its own.

use super::base::TrainingRegions;
use super::gate::limits::{HOT_FACTOR, INPUT_PEAK_FACTOR};
use super::n2n_round::N2nPair;
use crate::science::image::Image3;
use crate::science::regions::{body_mask, hot_groups, hottest, peak_mean};

/// At most this many hot spots (the hottest), so that labels fit a byte.
pub const MAX_SPOTS: usize = 255;

/// The hot spots of `pair`, labelled 1, 2, … in the regions' lesion map.
pub fn hot_spot_regions(pair: &N2nPair) -> TrainingRegions {
    let mean =
        Image3 { grid: pair.a.grid, data: pair.a.data.iter().zip(&pair.b.data).map(|(a, b)| 0.5 * (a + b)).collect() };
    let (body, _) = body_mask(&mean, &|_| true);
    let body_mean = mean.masked_mean(&body);
    let mut lesions = vec![0u8; mean.data.len()];
    let spots = hot_groups(&mean, &body, body_mean * HOT_FACTOR, usize::MAX)
        .into_iter()
        .filter(|group| {
            hottest(&mean, group).is_some_and(|centre| peak_mean(&mean, centre) >= INPUT_PEAK_FACTOR * body_mean)
        })
        .take(MAX_SPOTS);
    for (label, group) in (1..=u8::MAX).zip(spots) {
        for voxel in group {
            lesions[voxel] = label;
        }
    }
    TrainingRegions { liver: vec![false; mean.data.len()], lesions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::image::Grid;

    #[test]
    fn a_sphere_hotter_than_the_body_is_a_hot_spot_and_a_hot_voxel_of_noise_is_not() {
        // 4 mm voxels, as on a clinical scanner: SUVpeak's 1 cm³ sphere spans a voxel each way.
        let grid = Grid { size: 32, slices: 8, pixel_mm: 4.0, slice_mm: 4.0 };
        let mut half = Image3 { grid, data: vec![1.0; grid.voxels()] };
        let index = |z: usize, y: usize, x: usize| (z * 32 + y) * 32 + x;
        // A lesion of 3×3×3 voxels at SUV 6; one voxel of noise at 4 elsewhere.
        for z in 3..6 {
            for y in 10..13 {
                for x in 10..13 {
                    half.data[index(z, y, x)] = 6.0;
                }
            }
        }
        half.data[index(4, 25, 25)] = 4.0;
        let regions = hot_spot_regions(&N2nPair { a: half.clone(), b: half });
        assert_eq!(regions.lesions[index(4, 11, 11)], 1, "the lesion is hot spot 1");
        assert_eq!(regions.lesions[index(4, 25, 25)], 0, "one hot voxel has no SUVpeak to speak of");
        assert_eq!(regions.lesions.iter().filter(|l| **l > 0).count(), 27);
    }
}
