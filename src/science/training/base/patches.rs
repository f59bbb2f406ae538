//! Random training patches: 3 consecutive slices (edges replicated, as at inference) of a
//! square region, from a random pair, count level and position. Patches that fall mostly
//! outside the body are drawn again. A share of the patches can be drawn around a lesion
//! instead: small hot spheres cover a few hundred voxels of a patient, so with uniform draws
//! the network sees too few of them and learns to flatten them like noise.

use rand::Rng;

use super::data::TrainingPair;
use crate::science::image::Grid;

/// A batch as flat `[batch, slices, patch, patch]` arrays.
#[derive(Debug, Clone)]
pub struct PatchBatch {
    pub input: Vec<f32>,
    pub target: Vec<f32>,
    /// 1 where the target voxel lies in a lesion, else 0 (also where lesions are unknown).
    pub lesion: Vec<f32>,
    pub shape: [usize; 4],
}

/// How a batch is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatchSampling {
    pub batch: usize,
    /// Side of the square patches.
    pub patch: usize,
    /// Slices per patch (the network's input slices).
    pub window: usize,
    /// Share of the patches drawn so that they hold a lesion voxel, where the pairs' lesions
    /// are known (simulated data); 0 draws every patch uniformly.
    pub lesion_share: f64,
}

/// Voxels (slice, row, column) of one lesion of one pair, inside the pair's training slices.
struct LesionVoxels {
    pair: usize,
    voxels: Vec<(usize, usize, usize)>,
}

/// Draws batches from a fixed set of pairs; knows where their lesions are.
pub struct PatchSampler<'a> {
    pairs: &'a [TrainingPair],
    sampling: PatchSampling,
    lesions: Vec<LesionVoxels>,
}

impl<'a> PatchSampler<'a> {
    pub fn new(pairs: &'a [TrainingPair], sampling: PatchSampling) -> Self {
        let mut lesions = Vec::new();
        for (index, pair) in pairs.iter().enumerate() {
            let Some(regions) = &pair.regions else { continue };
            let grid = pair.target.grid;
            let slices = training_slices(pair);
            let mut by_label: std::collections::BTreeMap<u8, Vec<(usize, usize, usize)>> = Default::default();
            for (voxel, label) in regions.lesions.iter().enumerate() {
                let z = voxel / grid.pixels_per_slice();
                if *label > 0 && slices.is_none_or(|s| s.contains(&z)) {
                    let in_slice = voxel % grid.pixels_per_slice();
                    by_label.entry(*label).or_default().push((z, in_slice / grid.size, in_slice % grid.size));
                }
            }
            lesions.extend(by_label.into_values().map(|voxels| LesionVoxels { pair: index, voxels }));
        }
        Self { pairs, sampling, lesions }
    }

    /// Lesions patches can be drawn around.
    pub fn lesion_count(&self) -> usize {
        self.lesions.len()
    }

    /// Draws one batch. With a lesion share of 0 the draws are exactly those of uniform
    /// sampling (no extra random numbers), so runs made before the share existed repeat.
    pub fn draw(&self, rng: &mut impl Rng) -> PatchBatch {
        let PatchSampling { batch, patch, window, lesion_share } = self.sampling;
        let mut input = Vec::with_capacity(batch * window * patch * patch);
        let mut target = Vec::with_capacity(input.capacity());
        let mut lesion = Vec::with_capacity(input.capacity());
        for _ in 0..batch {
            let around_lesion =
                lesion_share > 0.0 && !self.lesions.is_empty() && rng.random_bool(lesion_share.min(1.0));
            let (pair, source, (z, x0, y0)) = if around_lesion {
                let lesion = &self.lesions[rng.random_range(0..self.lesions.len())];
                let pair = &self.pairs[lesion.pair];
                let source = &pair.inputs[rng.random_range(0..pair.inputs.len())].1;
                (pair, source, self.place_around(pair, lesion, rng))
            } else {
                let pair = &self.pairs[rng.random_range(0..self.pairs.len())];
                let source = &pair.inputs[rng.random_range(0..pair.inputs.len())].1;
                (pair, source, self.place_uniformly(pair, rng))
            };
            let grid = pair.target.grid;
            let place = PatchPlace { z, x0, y0, patch, window };
            copy_patch(&source.data, grid, place, &mut input, |v| v);
            copy_patch(&pair.target.data, grid, place, &mut target, |v| v);
            match &pair.regions {
                Some(regions) => copy_patch(&regions.lesions, grid, place, &mut lesion, |label| f32::from(label > 0)),
                None => lesion.resize(target.len(), 0.0),
            }
        }
        PatchBatch { input, target, lesion, shape: [batch, window, patch, patch] }
    }

    /// A uniform position whose centre slice is at least a quarter inside the body (20 tries).
    fn place_uniformly(&self, pair: &TrainingPair, rng: &mut impl Rng) -> (usize, usize, usize) {
        let patch = self.sampling.patch;
        let grid = pair.target.grid;
        let span = grid.size.saturating_sub(patch) + 1;
        let slices = training_slices(pair);
        let mut choice = (0, 0, 0);
        for _ in 0..20 {
            let z = match slices {
                Some(allowed) => allowed[rng.random_range(0..allowed.len())],
                None => rng.random_range(0..grid.slices),
            };
            choice = (z, rng.random_range(0..span), rng.random_range(0..span));
            let (z, x0, y0) = choice;
            let centre = pair.target.slice(z);
            let active = (y0..y0 + patch)
                .flat_map(|y| &centre[y * grid.size + x0..y * grid.size + x0 + patch])
                .filter(|v| **v > 0.05)
                .count();
            if active * 4 >= patch * patch {
                break;
            }
        }
        choice
    }

    /// A position whose patch holds a random voxel of `lesion`, anywhere in the patch.
    fn place_around(&self, pair: &TrainingPair, lesion: &LesionVoxels, rng: &mut impl Rng) -> (usize, usize, usize) {
        let patch = self.sampling.patch;
        let size = pair.target.grid.size;
        let (z, row, column) = lesion.voxels[rng.random_range(0..lesion.voxels.len())];
        let mut corner = |at: usize| {
            let lowest = (at + 1).saturating_sub(patch);
            let highest = at.min(size - patch);
            rng.random_range(lowest..=highest)
        };
        let x0 = corner(column);
        let y0 = corner(row);
        (z, x0, y0)
    }
}

/// Slices patches may be centred on; `None` for every slice.
fn training_slices(pair: &TrainingPair) -> Option<&[usize]> {
    pair.train_slices.as_deref().filter(|slices| !slices.is_empty())
}

/// Where a patch lies: `window` slices centred on slice `z`, corner (`x0`, `y0`), side `patch`.
#[derive(Debug, Clone, Copy)]
struct PatchPlace {
    z: usize,
    x0: usize,
    y0: usize,
    patch: usize,
    window: usize,
}

/// Appends the patch at `place` of a volume on `grid` to `out`, each voxel through `value`,
/// edge slices replicated.
fn copy_patch<T: Copy>(volume: &[T], grid: Grid, place: PatchPlace, out: &mut Vec<f32>, value: impl Fn(T) -> f32) {
    let PatchPlace { z, x0, y0, patch, window } = place;
    let half = window / 2;
    for offset in 0..window {
        let slice = (z + offset).saturating_sub(half).min(grid.slices - 1);
        let plane = &volume[slice * grid.pixels_per_slice()..(slice + 1) * grid.pixels_per_slice()];
        for y in y0..y0 + patch {
            let row = &plane[y * grid.size + x0..y * grid.size + x0 + patch];
            out.extend(row.iter().map(|v| value(*v)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::image::{Grid, Image3};
    use crate::science::training::base::TrainingRegions;
    use rand::SeedableRng;

    /// Input voxel values are their indices; the target is the input + 1000.
    fn indexed_pair(grid: Grid, regions: Option<TrainingRegions>) -> TrainingPair {
        let input = Image3 { grid, data: (0..grid.voxels()).map(|i| i as f32).collect() };
        let target = Image3 { grid, data: input.data.iter().map(|v| v + 1000.0).collect() };
        TrainingPair { name: "t".into(), inputs: vec![(1.0, input)], target, regions, train_slices: None }
    }

    #[test]
    fn patches_come_from_the_same_place_in_input_and_target() {
        let grid = Grid::new(16, 4);
        let pairs = vec![indexed_pair(grid, None)];
        let sampling = PatchSampling { batch: 5, patch: 8, window: 3, lesion_share: 0.0 };
        let batch = PatchSampler::new(&pairs, sampling).draw(&mut rand::rngs::StdRng::seed_from_u64(1));
        assert_eq!(batch.shape, [5, 3, 8, 8]);
        assert_eq!(batch.input.len(), 5 * 3 * 64);
        for (i, t) in batch.input.iter().zip(&batch.target) {
            assert_eq!(*t, i + 1000.0);
        }
        assert_eq!(batch.lesion, vec![0.0; batch.input.len()], "no lesions where none are known");
        // Within a patch, the three slices are consecutive (or the edge slice repeated).
        for patch in batch.input.chunks_exact(3 * 64) {
            let (a, b, c) = (patch[0] as usize / 256, patch[64] as usize / 256, patch[128] as usize / 256);
            assert!(b.abs_diff(a) <= 1 && c.abs_diff(b) <= 1, "slices {a} {b} {c}");
        }
    }

    #[test]
    fn the_lesion_share_of_patches_holds_a_lesion_voxel() {
        let grid = Grid::new(32, 6);
        // One lesion voxel in a corner, where a uniform 8×8 patch seldom reaches.
        let corner = 3 * grid.pixels_per_slice() + 30 * grid.size + 31;
        let mut lesions = vec![0u8; grid.voxels()];
        lesions[corner] = 1;
        let regions = TrainingRegions { liver: vec![false; grid.voxels()], lesions };
        let pairs = vec![indexed_pair(grid, Some(regions))];
        let holds_lesion = |patch: &[f32]| patch.iter().any(|v| *v as usize == corner);
        let share_with_lesion = |lesion_share: f64| {
            let sampling = PatchSampling { batch: 400, patch: 8, window: 3, lesion_share };
            let sampler = PatchSampler::new(&pairs, sampling);
            assert_eq!(sampler.lesion_count(), 1);
            let batch = sampler.draw(&mut rand::rngs::StdRng::seed_from_u64(7));
            for (input, lesion) in batch.input.iter().zip(&batch.lesion) {
                assert_eq!(*lesion, f32::from(*input as usize == corner), "the lesion map marks exactly the lesion");
            }
            batch.input.chunks_exact(3 * 64).filter(|p| holds_lesion(p)).count() as f64 / 400.0
        };
        assert_eq!(share_with_lesion(1.0), 1.0, "every patch holds the lesion at share 1");
        let uniform = share_with_lesion(0.0);
        assert!(uniform < 0.1, "a uniform draw seldom holds a corner voxel: {uniform}");
        let half = share_with_lesion(0.5);
        assert!((0.42..0.62).contains(&half), "about half the patches hold the lesion at share 0.5: {half}");
    }
}
