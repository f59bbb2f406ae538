//! Where a round's Noise2Noise pair comes from (docs/science.md §5): two stored series of
//! one acquisition with independent noise (named by an admin, or detected by their
//! SeriesDescription; [`crate::dicom::series_image`] reads them and checks their geometry),
//! or, when an admin asks for it, one image split by neighbour sub-sampling
//! (Neighbor2Neighbor), which is weaker because OSEM noise is correlated between
//! neighbouring voxels.

use rand::{Rng, SeedableRng};

use crate::science::image::{Grid, Image3};

/// Two independent reconstructions of one scan, normalised, on one grid.
#[derive(Debug, Clone)]
pub struct N2nPair {
    pub a: Image3,
    pub b: Image3,
}

/// How the pair was found, as the round records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairSource {
    /// An admin named the two series.
    AdminPair,
    /// Two series of one study matched the N2N-half description rule.
    DetectedPair,
    /// One series split into two by neighbour sub-sampling.
    NeighbourSubsampling,
}

impl PairSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AdminPair => "admin_pair",
            Self::DetectedPair => "detected_pair",
            Self::NeighbourSubsampling => "neighbour_subsampling",
        }
    }
}

/// Neighbor2Neighbor's sub-sampling of one image: in every 2×2 cell of every slice two
/// neighbouring pixels are drawn, one for each half, giving two half-size images whose
/// noise is independent where the original's was (seeded, so a repeated round is the same).
pub fn neighbour_subsampled(image: &Image3, seed: u64) -> N2nPair {
    let grid = image.grid;
    let half = grid.size / 2;
    let sub_grid = Grid { size: half, slices: grid.slices, pixel_mm: grid.pixel_mm * 2.0, slice_mm: grid.slice_mm };
    let mut a = Image3::zeros(sub_grid);
    let mut b = Image3::zeros(sub_grid);
    // The four neighbouring (edge-sharing) pairs of cell corners (0 1 / 2 3).
    const NEIGHBOURS: [(usize, usize); 4] = [(0, 1), (2, 3), (0, 2), (1, 3)];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for z in 0..grid.slices {
        let plane = image.slice(z);
        for y in 0..half {
            for x in 0..half {
                let corner = |k: usize| plane[(2 * y + k / 2) * grid.size + 2 * x + k % 2];
                let (first, second) = NEIGHBOURS[rng.random_range(0..NEIGHBOURS.len())];
                let (first, second) = if rng.random_bool(0.5) { (first, second) } else { (second, first) };
                let i = (z * half + y) * half + x;
                a.data[i] = corner(first);
                b.data[i] = corner(second);
            }
        }
    }
    N2nPair { a, b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_sampling_takes_two_different_neighbours_of_each_cell() {
        let grid = Grid::new(8, 2);
        // Every pixel's value is its index, so each half's pixel says where it came from.
        let image = Image3 { grid, data: (0..grid.voxels()).map(|i| i as f32).collect() };
        let pair = neighbour_subsampled(&image, 3);
        assert_eq!(pair.a.grid.size, 4);
        assert_eq!(pair.a.grid.pixel_mm, grid.pixel_mm * 2.0);
        for (i, (a, b)) in pair.a.data.iter().zip(&pair.b.data).enumerate() {
            let (z, y, x) = (i / 16, (i % 16) / 4, i % 4);
            let (a, b) = (*a as usize, *b as usize);
            for v in [a, b] {
                assert_eq!(v / 64, z, "same slice");
                assert_eq!((v % 64) / 8 / 2, y, "same cell row");
                assert_eq!(v % 8 / 2, x, "same cell column");
            }
            let distance = (a % 8).abs_diff(b % 8) + ((a % 64) / 8).abs_diff((b % 64) / 8);
            assert_eq!(distance, 1, "edge neighbours: {a} {b}");
        }
        assert_eq!(neighbour_subsampled(&image, 3).a.data, pair.a.data, "seeded");
    }
}
