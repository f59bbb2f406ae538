//! Random training patches: 3 consecutive slices (edges replicated, as at inference) of a
//! square region, from a random pair, count level and position; patches that fall mostly
//! outside the body are drawn again.

use rand::Rng;

use super::data::TrainingPair;
use crate::simulation::Image3;

/// A batch as flat `[batch, slices, patch, patch]` arrays.
#[derive(Debug, Clone)]
pub struct PatchBatch {
    pub input: Vec<f32>,
    pub target: Vec<f32>,
    pub shape: [usize; 4],
}

/// Copies the `window`-slice patch centred on slice `z` at (`x0`, `y0`) into `out`.
fn copy_patch(image: &Image3, z: usize, x0: usize, y0: usize, patch: usize, window: usize, out: &mut Vec<f32>) {
    let grid = image.grid;
    let half = window / 2;
    for offset in 0..window {
        let slice = (z + offset).saturating_sub(half).min(grid.slices - 1);
        let plane = image.slice(slice);
        for y in y0..y0 + patch {
            out.extend_from_slice(&plane[y * grid.size + x0..y * grid.size + x0 + patch]);
        }
    }
}

/// Draws `batch` patches of side `patch` with `window` slices.
pub fn sample_batch(
    pairs: &[TrainingPair],
    batch: usize,
    patch: usize,
    window: usize,
    rng: &mut impl Rng,
) -> PatchBatch {
    let mut input = Vec::with_capacity(batch * window * patch * patch);
    let mut target = Vec::with_capacity(input.capacity());
    for _ in 0..batch {
        let pair = &pairs[rng.random_range(0..pairs.len())];
        let (_, source) = &pair.inputs[rng.random_range(0..pair.inputs.len())];
        let grid = pair.target.grid;
        let span = grid.size.saturating_sub(patch) + 1;
        let slices = pair.train_slices.clone().filter(|r| !r.is_empty()).unwrap_or(0..grid.slices);
        let mut choice = (0, 0, 0);
        for _ in 0..20 {
            choice = (rng.random_range(slices.clone()), rng.random_range(0..span), rng.random_range(0..span));
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
        let (z, x0, y0) = choice;
        copy_patch(source, z, x0, y0, patch, window, &mut input);
        copy_patch(&pair.target, z, x0, y0, patch, window, &mut target);
    }
    PatchBatch { input, target, shape: [batch, window, patch, patch] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulation::Grid;
    use rand::SeedableRng;

    #[test]
    fn patches_come_from_the_same_place_in_input_and_target() {
        let grid = Grid::new(16, 4);
        // Target = input + 1000 everywhere, and every voxel's value encodes its index.
        let input = Image3 { grid, data: (0..grid.voxels()).map(|i| i as f32).collect() };
        let target = Image3 { grid, data: input.data.iter().map(|v| v + 1000.0).collect() };
        let pairs = vec![TrainingPair {
            name: "t".into(),
            inputs: vec![(1.0, input)],
            target,
            regions: None,
            train_slices: None,
        }];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let batch = sample_batch(&pairs, 5, 8, 3, &mut rng);
        assert_eq!(batch.shape, [5, 3, 8, 8]);
        assert_eq!(batch.input.len(), 5 * 3 * 64);
        for (i, t) in batch.input.iter().zip(&batch.target) {
            assert_eq!(*t, i + 1000.0);
        }
        // Within a patch, the three slices are consecutive (or the edge slice repeated).
        for patch in batch.input.chunks_exact(3 * 64) {
            let (a, b, c) = (patch[0] as usize / 256, patch[64] as usize / 256, patch[128] as usize / 256);
            assert!(b.abs_diff(a) <= 1 && c.abs_diff(b) <= 1, "slices {a} {b} {c}");
        }
    }
}
