//! What a denoised series is judged by against the truth (the noiseless reconstruction):
//!
//! - **error**: normalised RMSE over the body, ‖output − truth‖ / ‖truth‖, on all slices and
//!   on the round's held-out slices;
//! - **lesions**: each lesion's SUVmean and SUVmax, and how far its SUVmean is from the
//!   truth's, in percent of the truth;
//! - **body mean**: the output's mean over the body against the truth's, percent (what the
//!   gate's body-mean checks, which only see the input, stand in for);
//! - **liver noise**: the standard deviation of output − truth over the liver (lesions
//!   excluded), in percent of the truth's liver mean;
//! - **new hot spots**: connected groups of at least two voxels that are hot in the output
//!   (above 1.5 × the truth's liver mean plus two liver-noise deviations, PERCIST's
//!   threshold) where the truth is nowhere above 70 % of that threshold.
//!
//! ```
//! use petal::science::evaluation::rounds::measures::relative_error;
//! let truth = [2.0f32, 2.0, 0.0];
//! let output = [2.0f32, 1.0, 9.0];
//! let body = [true, true, false];
//! // ‖(0, −1)‖ / ‖(2, 2)‖ = 1 / √8.
//! assert!((relative_error(&output, &truth, &body) - 0.353_553).abs() < 1e-6);
//! ```

use super::patient::Patient;
use crate::science::image::Image3;
use crate::science::regions::{connected_groups, max_over};

/// A lesion's figures in one output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LesionMeasure {
    pub label: u8,
    pub organ: String,
    pub voxels: usize,
    pub truth_suv_mean: f64,
    pub truth_suv_max: f64,
    pub suv_mean: f64,
    pub suv_max: f64,
    /// (SUVmean − truth's SUVmean) / truth's SUVmean, percent.
    pub suv_mean_bias_percent: f64,
}

/// One output judged against the truth.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measures {
    /// Normalised RMSE over the body, every slice.
    pub error: f64,
    /// The same on the round's held-out slices.
    pub error_held_out: f64,
    pub lesions: Vec<LesionMeasure>,
    /// (mean over the body − the truth's) / the truth's, percent.
    pub body_mean_bias_percent: f64,
    pub liver_noise_percent: f64,
    pub new_hot_spots: usize,
}

/// ‖output − truth‖ / ‖truth‖ over the voxels where `mask` is set.
pub fn relative_error(output: &[f32], truth: &[f32], mask: &[bool]) -> f64 {
    let (mut error, mut norm) = (0.0, 0.0);
    for ((o, t), m) in output.iter().zip(truth).zip(mask) {
        if *m {
            error += (f64::from(*o) - f64::from(*t)).powi(2);
            norm += f64::from(*t).powi(2);
        }
    }
    if norm > 0.0 { (error / norm).sqrt() } else { f64::NAN }
}

impl Measures {
    /// `output` (one of the patient's series, denoised or not) against the patient's truth.
    pub fn of(output: &Image3, patient: &Patient, held_out: &[usize]) -> Self {
        let truth = &patient.truth;
        let plane = truth.grid.pixels_per_slice();
        let held_out_body: Vec<bool> =
            patient.body.iter().enumerate().map(|(i, b)| *b && held_out.contains(&(i / plane))).collect();
        let error = relative_error(&output.data, &truth.data, &patient.body);
        let error_held_out = relative_error(&output.data, &truth.data, &held_out_body);
        let lesions = patient
            .lesion_list
            .iter()
            .filter_map(|lesion| {
                let mask: Vec<bool> = patient.lesions.iter().map(|l| *l == lesion.label).collect();
                let voxels = mask.iter().filter(|m| **m).count();
                if voxels == 0 {
                    return None;
                }
                let (truth_mean, truth_max) = mean_and_max(truth, &mask);
                let (suv_mean, suv_max) = mean_and_max(output, &mask);
                Some(LesionMeasure {
                    label: lesion.label,
                    organ: lesion.organ.clone(),
                    voxels,
                    truth_suv_mean: truth_mean,
                    truth_suv_max: truth_max,
                    suv_mean,
                    suv_max,
                    suv_mean_bias_percent: (suv_mean / truth_mean - 1.0) * 100.0,
                })
            })
            .collect();
        let body_mean_bias_percent =
            (mean_and_max(output, &patient.body).0 / mean_and_max(truth, &patient.body).0 - 1.0) * 100.0;
        let (liver_mean, _) = mean_and_max(truth, &patient.liver);
        let liver_deviation = deviation(output, truth, &patient.liver);
        let threshold = 1.5 * liver_mean + 2.0 * liver_deviation;
        Self {
            error,
            error_held_out,
            lesions,
            body_mean_bias_percent,
            liver_noise_percent: liver_deviation / liver_mean * 100.0,
            new_hot_spots: new_hot_spots(output, truth, &patient.body, threshold),
        }
    }

    /// The lesion with `label`.
    pub fn lesion(&self, label: u8) -> Option<&LesionMeasure> {
        self.lesions.iter().find(|l| l.label == label)
    }
}

fn mean_and_max(image: &Image3, mask: &[bool]) -> (f64, f64) {
    let (mut sum, mut count, mut max) = (0.0, 0usize, f64::MIN);
    for (v, m) in image.data.iter().zip(mask) {
        if *m {
            sum += f64::from(*v);
            count += 1;
            max = max.max(f64::from(*v));
        }
    }
    if count == 0 { (f64::NAN, f64::NAN) } else { (sum / count as f64, max) }
}

/// Standard deviation of output − truth over `mask`.
fn deviation(output: &Image3, truth: &Image3, mask: &[bool]) -> f64 {
    let differences: Vec<f64> = output
        .data
        .iter()
        .zip(&truth.data)
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|((o, t), _)| f64::from(*o) - f64::from(*t))
        .collect();
    if differences.len() < 2 {
        return f64::NAN;
    }
    let mean = differences.iter().sum::<f64>() / differences.len() as f64;
    let variance = differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (differences.len() - 1) as f64;
    variance.sqrt()
}

/// Connected (6-neighbourhood) groups of at least two body voxels above `threshold` in
/// `output` where `truth` stays below 70 % of it.
fn new_hot_spots(output: &Image3, truth: &Image3, body: &[bool], threshold: f64) -> usize {
    let hot = |i: usize| body[i] && f64::from(output.data[i]) > threshold;
    connected_groups(output, hot)
        .into_iter()
        .filter(|group| group.len() >= 2 && max_over(truth, group) < 0.7 * threshold)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::image::Grid;

    #[test]
    fn a_hot_group_the_truth_lacks_is_new_and_a_single_voxel_is_not() {
        let grid = Grid::new(8, 2);
        let truth = Image3 { grid, data: vec![1.0; grid.voxels()] };
        let mut output = truth.clone();
        let body = vec![true; grid.voxels()];
        // Two neighbouring hot voxels (a new hot spot) and one lone hot voxel elsewhere.
        output.data[9] = 5.0;
        output.data[10] = 5.0;
        output.data[40] = 5.0;
        assert_eq!(new_hot_spots(&output, &truth, &body, 3.0), 1);
        // Where the truth is hot as well, the group is not new.
        let mut hot_truth = truth.clone();
        hot_truth.data[9] = 4.0;
        assert_eq!(new_hot_spots(&output, &hot_truth, &body, 3.0), 0);
    }
}
