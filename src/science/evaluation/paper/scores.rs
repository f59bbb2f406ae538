//! One network's figures of merit on one version of the test data (docs/science.md §6): the
//! lesion bias over R realizations (for each lesion, and their mean), the liver CoV across
//! realizations, and PSNR against the truth. Keeps what the bootstrap resamples: the
//! relative error of every lesion in every realization and the liver voxels of each
//! realization.

use super::test_scan::{TestScan, VersionData};
use crate::science::evaluation::paper_metrics::{lesion_bias_percent, liver_cov_percent};
use crate::science::metrics::psnr;
use crate::science::simulation::{Image3, ReconVersion};

/// Figures of one network (or of OSEM alone) on one data version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    pub network: String,
    pub data: ReconVersion,
    /// Bias (%) of each lesion, in the test scan's lesion order (the liver lesion first).
    pub lesion_bias: Vec<f64>,
    /// Mean of the lesions' biases (%).
    pub mean_lesion_bias: f64,
    /// Liver CoV (%).
    pub liver_cov: f64,
    /// Mean PSNR (dB) of the realizations against the truth, peak = the truth's maximum.
    pub psnr: f64,
    /// `lesion_errors[r][l]`: (μ − T) / T × 100 of lesion l in realization r.
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
    /// Scores `outputs` (one per realization of `data`) against the test scan's truth.
    pub fn measure(network: &str, data: &VersionData, outputs: &[Image3], test: &TestScan) -> anyhow::Result<Self> {
        anyhow::ensure!(outputs.len() >= 2, "at least two realizations are needed");
        let slices: Vec<&[f32]> = outputs.iter().map(|o| o.data.as_slice()).collect();
        let mut lesion_bias = Vec::new();
        for (lesion, mask) in &test.lesions {
            lesion_bias.push(
                lesion_bias_percent(&slices, mask, lesion.suv)
                    .ok_or_else(|| anyhow::anyhow!("lesion {} has no voxels", lesion.label))?,
            );
        }
        let lesion_errors = outputs
            .iter()
            .map(|output| {
                test.lesions
                    .iter()
                    .map(|(lesion, mask)| (output.masked_mean(mask) - lesion.suv) / lesion.suv * 100.0)
                    .collect()
            })
            .collect();
        let liver_cov =
            liver_cov_percent(&slices, &test.liver).ok_or_else(|| anyhow::anyhow!("the test patient has no liver"))?;
        let liver_values = outputs
            .iter()
            .map(|o| o.data.iter().zip(&test.liver).filter(|(_, m)| **m).map(|(v, _)| *v).collect())
            .collect();
        let peak = f64::from(test.truth.data.iter().fold(0.0f32, |m, v| m.max(*v)));
        let psnr = outputs.iter().map(|o| psnr(&o.data, &test.truth.data, peak)).sum::<f64>() / outputs.len() as f64;
        let sample_slice = outputs[0].slice(test.lesion_slice()).to_vec();
        Ok(Self {
            network: network.to_owned(),
            data: data.version,
            mean_lesion_bias: lesion_bias.iter().sum::<f64>() / lesion_bias.len().max(1) as f64,
            lesion_bias,
            liver_cov,
            psnr,
            lesion_errors,
            liver_values,
            sample_slice,
        })
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
