//! A 2D parallel-beam projector for one axial slice, and its exact adjoint.
//!
//! Pixel-driven: each pixel's value goes to the two detector bins either side of where its
//! centre projects, with linear weights. The back-projection uses the very same weights, so
//! ⟨Ax, y⟩ = ⟨x, Aᵀy⟩ holds to float rounding (a test checks it) and OSEM's multiplicative
//! update stays consistent. Sinograms are row-major `[angle][bin]`; angles are spread
//! evenly over 180°, bins are one pixel wide and centred on the axis.

/// Forward and back projection of `size × size` slices.
#[derive(Debug, Clone)]
pub struct Projector {
    size: usize,
    bins: usize,
    /// (cos θ, sin θ) of each angle.
    angles: Vec<(f32, f32)>,
}

impl Projector {
    /// `angles` views over 180° of a `size × size` slice, `size` bins per view.
    pub fn new(size: usize, angles: usize) -> Self {
        let angles = (0..angles)
            .map(|k| {
                let theta = std::f64::consts::PI * k as f64 / angles as f64;
                (theta.cos() as f32, theta.sin() as f32)
            })
            .collect();
        Self { size, bins: size, angles }
    }

    pub fn angles(&self) -> usize {
        self.angles.len()
    }

    pub fn bins(&self) -> usize {
        self.bins
    }

    pub fn sinogram_len(&self) -> usize {
        self.angles.len() * self.bins
    }

    /// Visits every (pixel, bin, weight) of one view.
    #[inline]
    fn for_each_weight(&self, angle: usize, mut visit: impl FnMut(usize, usize, f32)) {
        let (cos, sin) = self.angles[angle];
        let centre = self.size as f32 / 2.0 - 0.5;
        let bin_offset = self.bins as f32 / 2.0 - 0.5;
        let last_bin = self.bins as isize - 1;
        for y in 0..self.size {
            let along_y = (y as f32 - centre) * sin + bin_offset;
            let row = y * self.size;
            for x in 0..self.size {
                let position = (x as f32 - centre) * cos + along_y;
                let lower = position.floor();
                let weight_upper = position - lower;
                let lower = lower as isize;
                if (0..=last_bin).contains(&lower) {
                    visit(row + x, lower as usize, 1.0 - weight_upper);
                }
                if (-1..last_bin).contains(&lower) {
                    visit(row + x, (lower + 1) as usize, weight_upper);
                }
            }
        }
    }

    /// Projects `image` along view `angle` into `row` (length `bins`, overwritten).
    pub fn forward_view(&self, image: &[f32], angle: usize, row: &mut [f32]) {
        row.fill(0.0);
        self.for_each_weight(angle, |pixel, bin, weight| row[bin] += weight * image[pixel]);
    }

    /// Adds the back-projection of `row` along view `angle` to `image`.
    pub fn back_view(&self, row: &[f32], angle: usize, image: &mut [f32]) {
        self.for_each_weight(angle, |pixel, bin, weight| image[pixel] += weight * row[bin]);
    }

    /// The whole sinogram of `image`.
    pub fn forward(&self, image: &[f32]) -> Vec<f32> {
        let mut sinogram = vec![0.0; self.sinogram_len()];
        for (angle, row) in sinogram.chunks_exact_mut(self.bins).enumerate() {
            self.forward_view(image, angle, row);
        }
        sinogram
    }

    /// The back-projection of a whole sinogram.
    pub fn back(&self, sinogram: &[f32]) -> Vec<f32> {
        let mut image = vec![0.0; self.size * self.size];
        for (angle, row) in sinogram.chunks_exact(self.bins).enumerate() {
            self.back_view(row, angle, &mut image);
        }
        image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn the_back_projection_is_the_adjoint_of_the_projection() {
        let projector = Projector::new(24, 30);
        let mut rng = StdRng::seed_from_u64(7);
        let x: Vec<f32> = (0..24 * 24).map(|_| rng.random::<f32>()).collect();
        let y: Vec<f32> = (0..projector.sinogram_len()).map(|_| rng.random::<f32>()).collect();
        let ax = projector.forward(&x);
        let aty = projector.back(&y);
        let lhs: f64 = ax.iter().zip(&y).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        let rhs: f64 = x.iter().zip(&aty).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        assert!((lhs - rhs).abs() < 1e-4 * lhs.abs(), "<Ax,y> = {lhs}, <x,A'y> = {rhs}");
    }

    #[test]
    fn every_view_keeps_the_total_of_an_object_inside_the_field_of_view() {
        let size = 32;
        let projector = Projector::new(size, 16);
        // A disc well inside the inscribed circle projects entirely onto the detector.
        let image: Vec<f32> = (0..size * size)
            .map(|i| {
                let (x, y) = ((i % size) as f32 - 15.5, (i / size) as f32 - 15.5);
                if x * x + y * y < 100.0 { 1.0 + (i % 5) as f32 } else { 0.0 }
            })
            .collect();
        let total: f32 = image.iter().sum();
        let sinogram = projector.forward(&image);
        for row in sinogram.chunks_exact(projector.bins()) {
            let sum: f32 = row.iter().sum();
            assert!((sum - total).abs() < 1e-3 * total, "view total {sum} vs image total {total}");
        }
    }

    #[test]
    fn a_centred_point_projects_to_the_centre_of_every_view_symmetrically() {
        let size = 16;
        let projector = Projector::new(size, 8);
        let mut image = vec![0.0; size * size];
        // The four central pixels: symmetric about the axis of rotation.
        for (x, y) in [(7, 7), (7, 8), (8, 7), (8, 8)] {
            image[y * size + x] = 1.0;
        }
        let sinogram = projector.forward(&image);
        for row in sinogram.chunks_exact(size) {
            for bin in 0..size / 2 {
                let (left, right) = (row[bin], row[size - 1 - bin]);
                assert!((left - right).abs() < 1e-5, "view not symmetric: {row:?}");
            }
        }
    }
}
