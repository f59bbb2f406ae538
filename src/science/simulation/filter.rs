//! Gaussian filters: the detector blur along sinogram bins, and the post-reconstruction
//! smoothing of OSEM images. Kernels are truncated at 3σ, normalised to sum 1 and applied
//! with zero padding, so a 1D blur is its own adjoint (the OSEM system model relies on it).

use crate::science::image::Image3;

/// FWHM = 2·sqrt(2·ln 2)·σ.
pub const FWHM_PER_SIGMA: f64 = 2.354_820_045;

/// A normalised Gaussian kernel for a blur of `fwhm` samples; `[1.0]` when it is negligible.
pub fn gaussian_kernel(fwhm: f64) -> Vec<f32> {
    let sigma = fwhm / FWHM_PER_SIGMA;
    if sigma < 0.1 {
        return vec![1.0];
    }
    let radius = (3.0 * sigma).ceil() as i64;
    let raw: Vec<f64> = (-radius..=radius).map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp()).collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|v| (v / total) as f32).collect()
}

/// Convolves `count` lines of `len` samples, `stride` apart within a line and `line_step`
/// apart between lines, starting at `first`.
fn convolve_lines(data: &mut [f32], kernel: &[f32], lines: impl Iterator<Item = usize>, len: usize, stride: usize) {
    if kernel.len() == 1 {
        return;
    }
    let radius = (kernel.len() / 2) as isize;
    let mut line = vec![0.0f32; len];
    for start in lines {
        for (i, value) in line.iter_mut().enumerate() {
            *value = data[start + i * stride];
        }
        for i in 0..len as isize {
            let mut sum = 0.0;
            for (k, weight) in kernel.iter().enumerate() {
                let j = i + k as isize - radius;
                if (0..len as isize).contains(&j) {
                    sum += weight * line[j as usize];
                }
            }
            data[start + i as usize * stride] = sum;
        }
    }
}

/// Blurs each row (view) of a `[rows][len]` array along its length.
pub fn blur_rows(data: &mut [f32], len: usize, kernel: &[f32]) {
    let rows = data.len() / len;
    convolve_lines(data, kernel, (0..rows).map(|r| r * len), len, 1);
}

/// Smooths a volume with a Gaussian of the given FWHM in-plane and along z (mm).
pub fn smooth_volume(image: &mut Image3, fwhm_in_plane_mm: f64, fwhm_axial_mm: f64) {
    let grid = image.grid;
    let (n, slices) = (grid.size, grid.slices);
    let in_plane = gaussian_kernel(fwhm_in_plane_mm / grid.pixel_mm);
    let axial = gaussian_kernel(fwhm_axial_mm / grid.slice_mm);
    let plane = n * n;
    // Along x: every row of every slice.
    convolve_lines(&mut image.data, &in_plane, (0..slices * n).map(|r| r * n), n, 1);
    // Along y: every column of every slice.
    convolve_lines(&mut image.data, &in_plane, (0..slices).flat_map(|z| (0..n).map(move |x| z * plane + x)), n, n);
    // Along z: every pixel position.
    convolve_lines(&mut image.data, &axial, 0..plane, slices, plane);
}

/// Smooths a volume along z only (mm FWHM), as if the object went on beyond the first and
/// last slices as they are (the ends are repeated, not padded with zeros): for blurring an
/// object whose volume is a section of something longer.
pub fn smooth_along_z_extended(image: &mut Image3, fwhm_mm: f64) {
    let grid = image.grid;
    let kernel = gaussian_kernel(fwhm_mm / grid.slice_mm);
    if kernel.len() == 1 {
        return;
    }
    let (plane, slices) = (grid.pixels_per_slice(), grid.slices as isize);
    let radius = (kernel.len() / 2) as isize;
    let mut column = vec![0.0f32; grid.slices];
    for pixel in 0..plane {
        for (z, value) in column.iter_mut().enumerate() {
            *value = image.data[z * plane + pixel];
        }
        for z in 0..slices {
            let sum: f32 = kernel
                .iter()
                .enumerate()
                .map(|(k, weight)| weight * column[(z + k as isize - radius).clamp(0, slices - 1) as usize])
                .sum();
            image.data[z as usize * plane + pixel] = sum;
        }
    }
}

/// A reconstruction's Gaussian post-filter (mm FWHM, in-plane and along z). When the volume
/// is a section of a longer object, z continues the end slices instead of padding with
/// zeros.
pub fn post_filter(image: &mut Image3, fwhm_mm: f64, object_continues_axially: bool) {
    if fwhm_mm <= 0.0 {
        return;
    }
    if object_continues_axially {
        smooth_volume(image, fwhm_mm, 0.0);
        smooth_along_z_extended(image, fwhm_mm);
    } else {
        smooth_volume(image, fwhm_mm, fwhm_mm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::image::Grid;

    #[test]
    fn kernels_sum_to_one_and_have_the_asked_width() {
        let kernel = gaussian_kernel(4.0);
        let total: f32 = kernel.iter().sum();
        assert!((total - 1.0).abs() < 1e-6);
        let centre = kernel.len() / 2;
        // At ±FWHM/2 = ±2 samples the kernel is at half its peak.
        let ratio = kernel[centre + 2] / kernel[centre];
        assert!((ratio - 0.5).abs() < 0.01, "half maximum at 2 samples: {ratio}");
        assert_eq!(gaussian_kernel(0.0), vec![1.0]);
    }

    #[test]
    fn the_row_blur_is_its_own_adjoint() {
        let kernel = gaussian_kernel(3.0);
        let x: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32).collect();
        let y: Vec<f32> = (0..40).map(|i| ((i * 5) % 13) as f32).collect();
        let (mut bx, mut by) = (x.clone(), y.clone());
        blur_rows(&mut bx, 20, &kernel);
        blur_rows(&mut by, 20, &kernel);
        let lhs: f32 = bx.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&by).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-3 * lhs.abs());
    }

    #[test]
    fn the_axial_blur_of_a_section_keeps_a_uniform_object_uniform() {
        let grid = Grid::with_spacing(4, 6, 4.0, 3.0);
        let mut image = Image3 { grid, data: vec![2.0; grid.voxels()] };
        image.data[3 * 16 + 5] = 8.0;
        smooth_along_z_extended(&mut image, 6.0);
        // The ends stay at the object's value: the object goes on beyond them.
        assert!((image.data[4] - 2.0).abs() < 1e-5 && (image.data[5 * 16 + 4] - 2.0).abs() < 1e-5);
        // The bright voxel spread to its neighbours along z, and only along z.
        assert!(image.data[3 * 16 + 5] < 8.0 && image.data[2 * 16 + 5] > 2.0);
        assert!((image.data[3 * 16 + 6] - 2.0).abs() < 1e-5);
    }

    #[test]
    fn smoothing_keeps_the_total_of_an_interior_object() {
        let grid = Grid::new(32, 8);
        let mut image = Image3::zeros(grid);
        image.data[(4 * 32 + 16) * 32 + 16] = 100.0;
        smooth_volume(&mut image, 2.0 * grid.pixel_mm, 1.5 * grid.slice_mm);
        let total: f32 = image.data.iter().sum();
        assert!((total - 100.0).abs() < 1e-3);
        assert!(image.data[(4 * 32 + 16) * 32 + 16] < 50.0, "the point was spread");
    }
}
