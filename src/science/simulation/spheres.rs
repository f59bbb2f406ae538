//! Spheres drawn with their partial volume: a voxel that a sphere's edge cuts holds the
//! share of the sphere's activity that falls inside it, as in a real scanner's voxels.
//! Small lesions and the NEMA spheres (10 mm across on 4 mm voxels) depend on it: sampling
//! voxel centres alone would draw a 10 mm sphere as anything from 1 to 27 voxels.

use crate::science::image::Grid;

/// Sub-samples along each voxel edge when a voxel is cut by the surface (4³ = 64 points).
const SUBSAMPLES: usize = 4;

/// A sphere in patient coordinates (mm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sphere {
    pub centre_mm: [f64; 3],
    pub radius_mm: f64,
}

impl Sphere {
    /// Every voxel of the sphere's bounding box (the box of voxel centres within reach).
    pub fn bounding_voxels(&self, grid: &Grid) -> impl Iterator<Item = usize> + use<> {
        let [cx, cy, cz] = self.centre_mm;
        let r = self.radius_mm;
        let range = |centre: f64, first: f64, step: f64, count: usize| {
            let low = (((centre - r - first) / step).floor().max(0.0) as usize).min(count);
            let high = (((centre + r - first) / step).ceil().max(0.0) as usize + 1).min(count);
            low..high
        };
        let n = grid.size;
        let zs = range(cz, grid.z_mm(0), grid.slice_mm, grid.slices);
        let ys = range(cy, grid.y_mm(0), grid.pixel_mm, n);
        let xs = range(cx, grid.x_mm(0), grid.pixel_mm, n);
        zs.flat_map(move |z| {
            let xs = xs.clone();
            ys.clone().flat_map(move |y| xs.clone().map(move |x| (z * n + y) * n + x))
        })
    }

    /// The voxels whose centres lie within `reach_mm` of the sphere's centre.
    pub fn voxels_within(&self, grid: &Grid, reach_mm: f64) -> Vec<usize> {
        let n = grid.size;
        let [cx, cy, cz] = self.centre_mm;
        let grown = Sphere { centre_mm: self.centre_mm, radius_mm: reach_mm };
        grown
            .bounding_voxels(grid)
            .filter(|i| {
                let (x, y, z) = (i % n, (i / n) % n, i / (n * n));
                (grid.x_mm(x) - cx).powi(2) + (grid.y_mm(y) - cy).powi(2) + (grid.z_mm(z) - cz).powi(2)
                    <= reach_mm * reach_mm
            })
            .collect()
    }

    /// Every voxel the sphere touches, with the share of its volume inside the sphere.
    pub fn coverage(&self, grid: &Grid) -> Vec<(usize, f32)> {
        let [cx, cy, cz] = self.centre_mm;
        let r = self.radius_mm;
        let half = [grid.pixel_mm / 2.0, grid.pixel_mm / 2.0, grid.slice_mm / 2.0];
        let half_diagonal = (half[0].powi(2) + half[1].powi(2) + half[2].powi(2)).sqrt();
        let n = grid.size;
        self.bounding_voxels(grid)
            .filter_map(|index| {
                let (x, y, z) = (index % n, (index / n) % n, index / (n * n));
                let centre = [grid.x_mm(x), grid.y_mm(y), grid.z_mm(z)];
                let distance = ((centre[0] - cx).powi(2) + (centre[1] - cy).powi(2) + (centre[2] - cz).powi(2)).sqrt();
                let share = if distance + half_diagonal <= r {
                    1.0
                } else if distance - half_diagonal >= r {
                    0.0
                } else {
                    self.share_inside(centre, half)
                };
                (share > 0.0).then_some((index, share as f32))
            })
            .collect()
    }

    /// Share of a voxel (centre, half-widths) inside the sphere, by sub-sampling.
    fn share_inside(&self, centre: [f64; 3], half: [f64; 3]) -> f64 {
        let offset =
            |axis: usize, i: usize| centre[axis] - half[axis] + (i as f64 + 0.5) * 2.0 * half[axis] / SUBSAMPLES as f64;
        let r2 = self.radius_mm.powi(2);
        let mut inside = 0usize;
        for i in 0..SUBSAMPLES {
            for j in 0..SUBSAMPLES {
                for k in 0..SUBSAMPLES {
                    let d2 = (offset(0, i) - self.centre_mm[0]).powi(2)
                        + (offset(1, j) - self.centre_mm[1]).powi(2)
                        + (offset(2, k) - self.centre_mm[2]).powi(2);
                    inside += usize::from(d2 <= r2);
                }
            }
        }
        inside as f64 / SUBSAMPLES.pow(3) as f64
    }

    /// Volume (mL).
    pub fn volume_ml(&self) -> f64 {
        4.0 / 3.0 * std::f64::consts::PI * self.radius_mm.powi(3) / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_covered_volume_is_the_spheres_even_when_smaller_than_a_few_voxels() {
        let grid = Grid::with_spacing(64, 16, 4.0, 3.0);
        let voxel_ml = 4.0 * 4.0 * 3.0 / 1000.0;
        for (radius_mm, offset) in [(5.0, 0.0), (5.0, 1.3), (3.0, 0.7), (18.5, 2.1)] {
            let sphere = Sphere { centre_mm: [offset, -offset, 0.5 * offset], radius_mm };
            let covered: f64 = sphere.coverage(&grid).iter().map(|(_, share)| f64::from(*share)).sum();
            let ratio = covered * voxel_ml / sphere.volume_ml();
            assert!((ratio - 1.0).abs() < 0.04, "radius {radius_mm} offset {offset}: covered/true volume {ratio}");
        }
    }
}
