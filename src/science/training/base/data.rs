//! Where the base model's training pairs come from: the simulator (each patient scanned at
//! several count levels, the target being the reconstruction of noiseless data), or real
//! paired series, which the caller reads from DICOM (`petal train-base --pairs`).

use anyhow::Context;
use rayon::prelude::*;

use crate::science::simulation::acquisition::{ScannerModel, Sinograms};
use crate::science::simulation::osem::reconstruct;
use crate::science::simulation::{Grid, Image3, ReconVersion, Scan};

/// Where the liver and the lesions of a simulated patient are: for the report's regional
/// means, and for drawing patches around lesions.
#[derive(Debug, Clone, Default)]
pub struct TrainingRegions {
    /// The liver without its lesions.
    pub liver: Vec<bool>,
    /// 0 outside lesions, else the lesion's label.
    pub lesions: Vec<u8>,
}

impl TrainingRegions {
    /// Every lesion voxel.
    pub fn lesion_mask(&self) -> Vec<bool> {
        self.lesions.iter().map(|l| *l > 0).collect()
    }
}

/// Inputs at one or more count levels and the target they should map to, all normalised
/// (SUV) on one grid.
#[derive(Debug, Clone)]
pub struct TrainingPair {
    pub name: String,
    /// (share of the full counts, or 1 for real pairs; image).
    pub inputs: Vec<(f64, Image3)>,
    pub target: Image3,
    /// Known only for simulated data.
    pub regions: Option<TrainingRegions>,
    /// Slices patches may be centred on (all when `None`); the rest is held out.
    pub train_slices: Option<Vec<usize>>,
}

/// How simulated training data are made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimulatedData {
    pub grid: Grid,
    pub recon: ReconVersion,
    pub seconds_per_bed: f64,
    /// Shares of the full counts the inputs are reconstructed from.
    pub count_levels: Vec<f64>,
}

impl SimulatedData {
    /// The pair of one simulated patient: one input per count level.
    pub fn pair(&self, seed: u64) -> TrainingPair {
        let Ok(pair) = self.simulate(seed, |scan| {
            Ok::<_, std::convert::Infallible>(
                self.count_levels
                    .iter()
                    .enumerate()
                    .map(|(variant, level)| {
                        let counts =
                            if *level >= 1.0 { scan.counts.clone() } else { scan.thinned(*level, variant as u64) };
                        (*level, counts)
                    })
                    .collect(),
            )
        });
        pair
    }

    /// A held-out patient with up to `realizations` independent inputs per count level:
    /// disjoint parts of the counts, as many as fit (10 % gives up to 10, 50 % two, the full
    /// counts one).
    pub fn held_out_pair(&self, seed: u64, realizations: usize) -> anyhow::Result<TrainingPair> {
        let pair = self.simulate(seed, |scan| {
            let mut inputs = Vec::new();
            for level in &self.count_levels {
                if *level >= 1.0 {
                    inputs.push((*level, scan.counts.clone()));
                    continue;
                }
                let fit = ((1.0 + 1e-9) / level).floor() as usize;
                let parts = scan.realizations(realizations.clamp(1, fit.max(1)), *level)?;
                inputs.extend(parts.into_iter().map(|counts| (*level, counts)));
            }
            Ok::<_, crate::science::simulation::acquisition::SplitError>(inputs)
        });
        pair.context("the held-out patient's realizations")
    }

    /// Scans patient `seed`, reconstructs the target from noiseless data and each input from
    /// the counts `inputs` picks.
    fn simulate<E>(
        &self,
        seed: u64,
        inputs: impl FnOnce(&Scan) -> Result<Vec<(f64, Sinograms)>, E>,
    ) -> Result<TrainingPair, E> {
        let scan = Scan::acquire(seed, self.grid, ScannerModel::default(), self.seconds_per_bed);
        let recon = self.recon.settings();
        let target = reconstruct(&scan.system, &scan.noiseless(), &recon, &|| {});
        let inputs = inputs(&scan)?
            .into_par_iter()
            .map(|(level, counts)| (level, reconstruct(&scan.system, &counts, &recon, &|| {})))
            .collect();
        let phantom = &scan.phantom;
        let regions = TrainingRegions {
            liver: phantom.liver.iter().zip(&phantom.lesions).map(|(l, s)| *l && *s == 0).collect(),
            lesions: phantom.lesions.clone(),
        };
        Ok(TrainingPair { name: format!("sim-{seed:05}"), inputs, target, regions: Some(regions), train_slices: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_out_patient_has_as_many_disjoint_realizations_per_level_as_fit() {
        let data = SimulatedData {
            grid: Grid::new(32, 8),
            recon: ReconVersion::V1,
            seconds_per_bed: 120.0,
            count_levels: vec![0.25, 0.5, 1.0],
        };
        let pair = data.held_out_pair(7, 3).expect("held-out pair");
        let levels: Vec<f64> = pair.inputs.iter().map(|(level, _)| *level).collect();
        assert_eq!(levels, [0.25, 0.25, 0.25, 0.5, 0.5, 1.0], "3 at 25 %, the 2 that fit at 50 %, 1 at full count");
        // Disjoint parts of the counts are different noise, not one image repeated.
        assert_ne!(pair.inputs[0].1.data, pair.inputs[1].1.data);
        let regions = pair.regions.expect("simulated data know their regions");
        assert_eq!(regions.lesions.len(), data.grid.voxels());
        assert!(regions.lesions.iter().any(|l| *l > 0), "the liver lesion is drawn");
    }
}
