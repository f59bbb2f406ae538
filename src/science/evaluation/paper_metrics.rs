//! The paper's two figures of merit (docs/science.md §6), over R i.i.d. low-count realizations
//! of one scan:
//!
//! - lesion bias % = mean over r of (μ_L^r − T_L) / T_L × 100, with μ_L^r the mean over the
//!   lesion's voxels in realization r and T_L the lesion's true value;
//! - liver CoV % = (mean over liver voxels of the standard deviation across realizations)
//!   / (mean liver value) × 100, the standard deviation with R − 1 in the denominator and
//!   the mean liver value taken over every realization.
//!
//! ```
//! use petal::science::evaluation::paper_metrics::{lesion_bias_percent, liver_cov_percent};
//! let r1 = [9.0f32, 2.0];
//! let r2 = [11.0f32, 4.0];
//! let lesion = [true, false];
//! assert_eq!(lesion_bias_percent(&[&r1, &r2], &lesion, 10.0), Some(0.0));
//! let liver = [false, true];
//! // std of (2, 4) is √2, mean 3: CoV = 47.14 %.
//! assert!((liver_cov_percent(&[&r1, &r2], &liver).unwrap() - 47.1405).abs() < 1e-3);
//! ```

/// Mean of `values` over the voxels where `mask` is set.
fn masked_mean(values: &[f32], mask: &[bool]) -> Option<f64> {
    let (sum, count) =
        values.iter().zip(mask).filter(|(_, m)| **m).fold((0.0, 0usize), |(s, c), (v, _)| (s + f64::from(*v), c + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Lesion bias (%) of the realizations against the lesion's true value; `None` without
/// realizations, lesion voxels or a non-zero true value.
pub fn lesion_bias_percent(realizations: &[&[f32]], lesion: &[bool], true_value: f64) -> Option<f64> {
    if realizations.is_empty() || true_value == 0.0 {
        return None;
    }
    let mut total = 0.0;
    for realization in realizations {
        total += (masked_mean(realization, lesion)? - true_value) / true_value;
    }
    Some(total / realizations.len() as f64 * 100.0)
}

/// Liver coefficient of variation (%) across realizations; `None` with fewer than two
/// realizations, no liver voxel, or a zero mean.
pub fn liver_cov_percent(realizations: &[&[f32]], liver: &[bool]) -> Option<f64> {
    let r = realizations.len();
    if r < 2 {
        return None;
    }
    let (mut std_sum, mut mean_sum, mut voxels) = (0.0, 0.0, 0usize);
    for (i, _) in liver.iter().enumerate().filter(|(_, m)| **m) {
        let values: Vec<f64> = realizations.iter().map(|x| f64::from(x[i])).collect();
        let mean = values.iter().sum::<f64>() / r as f64;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (r - 1) as f64;
        std_sum += variance.sqrt();
        mean_sum += mean;
        voxels += 1;
    }
    if voxels == 0 || mean_sum == 0.0 {
        return None;
    }
    Some(std_sum / voxels as f64 / (mean_sum / voxels as f64) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lesion_bias_matches_hand_computed_values() {
        // Lesion = voxels 0 and 1, true value 8. Means per realization: 6, 7, 9 →
        // biases −25 %, −12.5 %, +12.5 % → mean −8.3333 %.
        let r1 = [5.0f32, 7.0, 100.0];
        let r2 = [6.0f32, 8.0, -3.0];
        let r3 = [9.0f32, 9.0, 0.0];
        let lesion = [true, true, false];
        let bias = lesion_bias_percent(&[&r1, &r2, &r3], &lesion, 8.0).expect("bias");
        assert!((bias - (-25.0 / 3.0)).abs() < 1e-9, "{bias}");
        assert_eq!(lesion_bias_percent(&[], &lesion, 8.0), None);
        assert_eq!(lesion_bias_percent(&[&r1], &[false, false, false], 8.0), None);
    }

    #[test]
    fn liver_cov_matches_hand_computed_values() {
        // Liver = voxels 0 and 1 over three realizations:
        // voxel 0: 1, 2, 3 → std 1, mean 2; voxel 1: 4, 4, 4 → std 0, mean 4.
        // mean std 0.5, mean value 3 → CoV 16.667 %.
        let r1 = [1.0f32, 4.0, 50.0];
        let r2 = [2.0f32, 4.0, 60.0];
        let r3 = [3.0f32, 4.0, 70.0];
        let liver = [true, true, false];
        let cov = liver_cov_percent(&[&r1, &r2, &r3], &liver).expect("cov");
        assert!((cov - 50.0 / 3.0).abs() < 1e-9, "{cov}");
        assert_eq!(liver_cov_percent(&[&r1], &liver), None);
    }
}
