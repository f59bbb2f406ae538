//! PSNR and SSIM of a volume against a reference, slice by slice over the same grid.
//!
//! ```
//! use petal::science::metrics::{psnr, ssim};
//! let reference = vec![1.0f32; 64 * 64];
//! let mut noisy = reference.clone();
//! noisy[100] = 1.5;
//! assert!(psnr(&noisy, &reference, 2.0) > 40.0);
//! assert!(ssim(&reference, &reference, 64, 64, 2.0) > 0.999);
//! ```

/// Peak signal-to-noise ratio (dB) of `image` against `reference`, for the data range `peak`.
pub fn psnr(image: &[f32], reference: &[f32], peak: f64) -> f64 {
    let mse = image.iter().zip(reference).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum::<f64>()
        / image.len().max(1) as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (peak * peak / mse).log10() }
}

/// Gaussian window of SSIM (σ = 1.5, 11 taps), normalised.
fn window() -> [f64; 11] {
    let mut taps = [0.0; 11];
    for (i, tap) in taps.iter_mut().enumerate() {
        let d = i as f64 - 5.0;
        *tap = (-d * d / (2.0 * 1.5 * 1.5)).exp();
    }
    let total: f64 = taps.iter().sum();
    taps.map(|t| t / total)
}

/// Separable Gaussian filtering of one `height × width` plane (edges replicated).
fn filter(plane: &[f64], height: usize, width: usize) -> Vec<f64> {
    let taps = window();
    let mut rows = vec![0.0; plane.len()];
    for y in 0..height {
        for x in 0..width {
            rows[y * width + x] = taps
                .iter()
                .enumerate()
                .map(|(k, t)| t * plane[y * width + (x + k).saturating_sub(5).min(width - 1)])
                .sum();
        }
    }
    let mut out = vec![0.0; plane.len()];
    for y in 0..height {
        for x in 0..width {
            out[y * width + x] = taps
                .iter()
                .enumerate()
                .map(|(k, t)| t * rows[(y + k).saturating_sub(5).min(height - 1) * width + x])
                .sum();
        }
    }
    out
}

/// Mean structural similarity (Wang et al. 2004, Gaussian window, K1 = 0.01, K2 = 0.03) of
/// `image` against `reference`, averaged over every `height × width` slice.
pub fn ssim(image: &[f32], reference: &[f32], height: usize, width: usize, peak: f64) -> f64 {
    let plane = height * width;
    if plane == 0 || image.len() != reference.len() || !image.len().is_multiple_of(plane) {
        return f64::NAN;
    }
    let (c1, c2) = ((0.01 * peak).powi(2), (0.03 * peak).powi(2));
    let slices = image.len() / plane;
    let mut total = 0.0;
    for z in 0..slices {
        let a: Vec<f64> = image[z * plane..(z + 1) * plane].iter().map(|v| f64::from(*v)).collect();
        let b: Vec<f64> = reference[z * plane..(z + 1) * plane].iter().map(|v| f64::from(*v)).collect();
        let product = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(x, y)| x * y).collect::<Vec<_>>();
        let (mu_a, mu_b) = (filter(&a, height, width), filter(&b, height, width));
        let (aa, bb, ab) = (
            filter(&product(&a, &a), height, width),
            filter(&product(&b, &b), height, width),
            filter(&product(&a, &b), height, width),
        );
        let mut sum = 0.0;
        for i in 0..plane {
            let (ma, mb) = (mu_a[i], mu_b[i]);
            let (va, vb, cov) = (aa[i] - ma * ma, bb[i] - mb * mb, ab[i] - ma * mb);
            sum += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
        }
        total += sum / plane as f64;
    }
    total / slices as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_matches_a_hand_computed_value() {
        // MSE = (0.1² + 0.1²) / 4 = 0.005; peak 1 → 10·log10(200) = 23.0103 dB.
        let psnr = psnr(&[1.1, 0.9, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0], 1.0);
        assert!((psnr - 23.0103).abs() < 1e-3, "{psnr}");
    }

    #[test]
    fn ssim_is_one_for_identical_images_and_falls_with_noise() {
        let (h, w) = (32, 32);
        let reference: Vec<f32> =
            (0..h * w).map(|i| ((i % w) as f32 / w as f32) + ((i / w) % 8) as f32 * 0.1).collect();
        assert!((ssim(&reference, &reference, h, w, 2.0) - 1.0).abs() < 1e-12);
        let noisy: Vec<f32> =
            reference.iter().enumerate().map(|(i, v)| v + if i % 2 == 0 { 0.2 } else { -0.2 }).collect();
        let noisier: Vec<f32> =
            reference.iter().enumerate().map(|(i, v)| v + if i % 2 == 0 { 0.5 } else { -0.5 }).collect();
        let (s1, s2) = (ssim(&noisy, &reference, h, w, 2.0), ssim(&noisier, &reference, h, w, 2.0));
        assert!(s1 < 1.0 && s2 < s1, "ssim {s1} then {s2}");
        // Constant offset of the whole image: luminance term only, known closed form at each pixel.
        let shifted: Vec<f32> = vec![1.5; h * w];
        let flat: Vec<f32> = vec![1.0; h * w];
        let c1 = (0.01f64 * 2.0).powi(2);
        let expected = (2.0 * 1.5 * 1.0 + c1) / (1.5f64 * 1.5 + 1.0 + c1);
        assert!((ssim(&shifted, &flat, h, w, 2.0) - expected).abs() < 1e-9);
    }
}
