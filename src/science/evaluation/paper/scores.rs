//! One network's figures of merit on one version of the test data (docs/science.md §6): the
//! lesion bias over R realizations against the same version's reconstruction of noiseless
//! data (for each lesion, and their mean), the bias against the phantom and the contrast
//! recovery beside it, the liver CoV across realizations, and PSNR. Keeps what the bootstrap
//! resamples: the relative error of every lesion in every realization and the liver voxels
//! of each realization.

use super::test_scan::{TestScan, VersionData};
use crate::science::evaluation::paper_metrics::{lesion_bias_percent, liver_cov_percent};
use crate::science::metrics::psnr;
use crate::science::simulation::{Image3, ReconVersion};

/// Figures of one network (or of OSEM alone) on one data version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    pub network: String,
    pub data: ReconVersion,
    /// Bias (%) of each lesion against the noiseless reconstruction of the same version, in
    /// the test scan's lesion order (the liver lesion first): what the noise and the
    /// network cost, OSEM's own partial-volume loss left out.
    pub lesion_bias: Vec<f64>,
    /// Mean of the lesions' biases (%).
    pub mean_lesion_bias: f64,
    /// Bias (%) of each lesion against the phantom's true SUV (OSEM's loss included).
    pub truth_bias: Vec<f64>,
    pub mean_truth_bias: f64,
    /// Contrast recovery of each lesion against its surrounding tissue, (mean over
    /// realizations of lesion / ring − 1) / (true contrast − 1); `None` where the ring holds
    /// no voxel of that tissue.
    pub contrast_recovery: Vec<Option<f64>>,
    /// Liver CoV (%).
    pub liver_cov: f64,
    /// Mean PSNR (dB) of the realizations against the noiseless reconstruction, peak = its
    /// maximum.
    pub psnr: f64,
    /// `lesion_errors[r][l]`: (μ − R) / R × 100 of lesion l in realization r, R the
    /// noiseless reconstruction's lesion mean.
    #[serde(skip)]
    pub lesion_errors: Vec<Vec<f64>>,
    /// The liver voxels of each realization.
    #[serde(skip)]
    pub liver_values: Vec<Vec<f32>>,
    /// The slice through the liver lesion of the first realization (for the figures).
    #[serde(skip)]
    pub sample_slice: Vec<f32>,
}

impl Scores {
    /// Scores `outputs` (one per realization of `data`) against `data`'s noiseless
    /// reconstruction and the test scan's truth.
    pub fn measure(network: &str, data: &VersionData, outputs: &[Image3], test: &TestScan) -> anyhow::Result<Self> {
        anyhow::ensure!(outputs.len() >= 2, "at least two realizations are needed");
        let slices: Vec<&[f32]> = outputs.iter().map(|o| o.data.as_slice()).collect();
        let mut lesion_bias = Vec::new();
        let mut truth_bias = Vec::new();
        let mut references = Vec::new();
        for (lesion, mask) in &test.lesions {
            let reference = data.reference.masked_mean(mask);
            let missing = || anyhow::anyhow!("lesion {} has no voxels", lesion.label);
            lesion_bias.push(lesion_bias_percent(&slices, mask, reference).ok_or_else(missing)?);
            truth_bias.push(lesion_bias_percent(&slices, mask, lesion.suv).ok_or_else(missing)?);
            references.push(reference);
        }
        let contrast_recovery = test
            .lesions
            .iter()
            .zip(&test.backgrounds)
            .map(|((lesion, mask), ring)| contrast_recovery(outputs, mask, ring, lesion.contrast))
            .collect();
        let lesion_errors = outputs
            .iter()
            .map(|output| {
                test.lesions
                    .iter()
                    .zip(&references)
                    .map(|((_, mask), reference)| (output.masked_mean(mask) - reference) / reference * 100.0)
                    .collect()
            })
            .collect();
        let liver_cov =
            liver_cov_percent(&slices, &test.liver).ok_or_else(|| anyhow::anyhow!("the test patient has no liver"))?;
        let liver_values = outputs
            .iter()
            .map(|o| o.data.iter().zip(&test.liver).filter(|(_, m)| **m).map(|(v, _)| *v).collect())
            .collect();
        let peak = f64::from(data.reference.data.iter().fold(0.0f32, |m, v| m.max(*v)));
        let psnr =
            outputs.iter().map(|o| psnr(&o.data, &data.reference.data, peak)).sum::<f64>() / outputs.len() as f64;
        let sample_slice = outputs[0].slice(test.lesion_slice()).to_vec();
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
        Ok(Self {
            network: network.to_owned(),
            data: data.version,
            mean_lesion_bias: mean(&lesion_bias),
            lesion_bias,
            mean_truth_bias: mean(&truth_bias),
            truth_bias,
            contrast_recovery,
            liver_cov,
            psnr,
            lesion_errors,
            liver_values,
            sample_slice,
        })
    }

    /// The standard error (percentage points) of lesion `lesion`'s bias: the standard
    /// deviation of its per-realization errors over √R.
    pub fn lesion_bias_standard_error(&self, lesion: usize) -> f64 {
        let errors: Vec<f64> = self.lesion_errors.iter().filter_map(|r| r.get(lesion).copied()).collect();
        let r = errors.len() as f64;
        if r < 2.0 {
            return f64::NAN;
        }
        let mean = errors.iter().sum::<f64>() / r;
        (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (r - 1.0) / r).sqrt()
    }

    /// The mean over lesions of this network's contrast recovery divided by `reference`'s
    /// (OSEM alone on the same data), over the lesions both have.
    pub fn mean_recovery_ratio(&self, reference: &Scores) -> Option<f64> {
        let ratios: Vec<f64> = self
            .contrast_recovery
            .iter()
            .zip(&reference.contrast_recovery)
            .filter_map(|(mine, theirs)| Some(mine.as_ref()? / theirs.as_ref()?))
            .collect();
        (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64)
    }

    /// |mean lesion bias| over the chosen realizations and lesions.
    pub fn absolute_bias_of(&self, realizations: &[usize], lesions: &[usize]) -> f64 {
        let mut sum = 0.0;
        for r in realizations {
            for l in lesions {
                sum += self.lesion_errors[*r][*l];
            }
        }
        (sum / (realizations.len() * lesions.len()).max(1) as f64).abs()
    }

    /// The liver CoV (%) of the chosen realizations.
    pub fn cov_of(&self, realizations: &[usize]) -> f64 {
        let chosen: Vec<&[f32]> = realizations.iter().map(|r| self.liver_values[*r].as_slice()).collect();
        let everywhere = vec![true; self.liver_values.first().map_or(0, Vec::len)];
        liver_cov_percent(&chosen, &everywhere).unwrap_or(f64::NAN)
    }

    /// The liver CoV (%) of a bootstrap resample of R realizations drawn with replacement.
    /// Duplicates make the resample's variance (R − 1)/R of the sample's on average, which
    /// shifted every resampled CoV down and left the estimate outside its own interval; the
    /// standard deviations are scaled back by √(R / (R − 1)).
    pub fn resampled_cov_of(&self, realizations: &[usize]) -> f64 {
        let r = realizations.len() as f64;
        self.cov_of(realizations) * (r / (r - 1.0)).sqrt()
    }

    pub fn lesion_count(&self) -> usize {
        self.lesion_errors.first().map_or(0, Vec::len)
    }
}

/// (mean over `outputs` of lesion mean / ring mean − 1) / (`true_contrast` − 1).
fn contrast_recovery(outputs: &[Image3], lesion: &[bool], ring: &[bool], true_contrast: f64) -> Option<f64> {
    if !ring.iter().any(|m| *m) || (true_contrast - 1.0).abs() < 1e-9 {
        return None;
    }
    let ratio = outputs.iter().map(|o| o.masked_mean(lesion) / o.masked_mean(ring)).sum::<f64>() / outputs.len() as f64;
    Some((ratio - 1.0) / (true_contrast - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::evaluation::paper::scale::PaperScale;

    #[test]
    fn each_reference_scores_itself_as_unbiased() {
        let test = TestScan::simulate(&PaperScale::quick()).expect("test scan");
        let noiseless = [test.v2.reference.clone(), test.v2.reference.clone()];
        let scores = Scores::measure("noiseless OSEM", &test.v2, &noiseless, &test).expect("scores");
        assert!(scores.lesion_bias.iter().all(|b| b.abs() < 1e-9), "{:?}", scores.lesion_bias);
        // OSEM of noiseless data still loses part of each small lesion to resolution.
        assert!(scores.truth_bias.iter().all(|b| *b < 0.0), "{:?}", scores.truth_bias);

        let phantom = [test.truth.clone(), test.truth.clone()];
        let scores = Scores::measure("phantom", &test.v2, &phantom, &test).expect("scores");
        assert!(scores.truth_bias.iter().all(|b| b.abs() < 1e-4), "{:?}", scores.truth_bias);
        let recovered: Vec<f64> = scores.contrast_recovery.iter().flatten().copied().collect();
        assert!(!recovered.is_empty(), "at least one lesion has a ring of its own tissue");
        // Within 1 %: the tissue around a lesion is not perfectly uniform in the phantom.
        assert!(recovered.iter().all(|c| (c - 1.0).abs() < 0.01), "the phantom recovers all contrast: {recovered:?}");
    }
}
