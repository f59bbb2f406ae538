//! How grainy noise is: the width of its spatial autocorrelation. OSEM noise is correlated
//! over neighbouring pixels, more so with post-filtering; this is what tells `v1` from `v2`.

use crate::science::image::Image3;

/// Full width at half maximum (mm) of the in-plane autocorrelation of `noise` over the
/// voxels where `mask` is set (a noise image: a noisy reconstruction minus its mean).
/// The autocorrelation is averaged over the x and y directions and interpolated linearly
/// where it falls through one half.
pub fn autocorrelation_fwhm_mm(noise: &Image3, mask: &[bool]) -> f64 {
    let grid = noise.grid;
    let n = grid.size;
    let max_lag = (n / 4).max(2);
    let mut correlation = vec![0.0f64; max_lag + 1];
    let mut pairs = vec![0usize; max_lag + 1];
    for z in 0..grid.slices {
        for y in 0..n {
            for x in 0..n {
                let here = (z * n + y) * n + x;
                if !mask[here] {
                    continue;
                }
                for lag in 0..=max_lag {
                    for there in
                        [(x + lag < n).then(|| here + lag), (y + lag < n).then(|| here + lag * n)].into_iter().flatten()
                    {
                        if mask[there] {
                            correlation[lag] += f64::from(noise.data[here]) * f64::from(noise.data[there]);
                            pairs[lag] += 1;
                        }
                    }
                }
            }
        }
    }
    let normalised: Vec<f64> =
        correlation.iter().zip(&pairs).map(|(c, p)| if *p > 0 { c / *p as f64 } else { 0.0 }).collect();
    let peak = normalised[0];
    if peak <= 0.0 {
        return 0.0;
    }
    for lag in 1..=max_lag {
        let (before, after) = (normalised[lag - 1] / peak, normalised[lag] / peak);
        if after <= 0.5 {
            let half_lag = (lag - 1) as f64 + (before - 0.5) / (before - after);
            return 2.0 * half_lag * grid.pixel_mm;
        }
    }
    2.0 * max_lag as f64 * grid.pixel_mm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::image::Grid;
    use crate::science::simulation::filter::smooth_volume;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn smoothing_white_noise_widens_its_autocorrelation() {
        let grid = Grid::new(64, 4);
        let mut rng = StdRng::seed_from_u64(1);
        let white = Image3 { grid, data: (0..grid.voxels()).map(|_| rng.random::<f32>() - 0.5).collect() };
        let mask = vec![true; grid.voxels()];
        let white_width = autocorrelation_fwhm_mm(&white, &mask);
        // White noise falls to ~0 at lag 1: its half maximum lies within the first pixel.
        assert!(white_width < 1.1 * grid.pixel_mm, "white noise width {white_width}");
        let mut smooth = white.clone();
        smooth_volume(&mut smooth, 3.0 * grid.pixel_mm, 0.0);
        let smooth_width = autocorrelation_fwhm_mm(&smooth, &mask);
        // A Gaussian of FWHM w gives an autocorrelation of FWHM √2·w.
        let expected = 2f64.sqrt() * 3.0 * grid.pixel_mm;
        assert!((smooth_width / expected - 1.0).abs() < 0.2, "smoothed width {smooth_width} vs {expected}");
    }
}
