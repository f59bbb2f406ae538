//! Where the base model's training pairs come from: the simulator (each patient scanned at
//! several count levels, the target being the reconstruction of noiseless data), or real
//! paired series, which the caller reads from DICOM (`petal train-base --pairs`).

use anyhow::Context;
use rayon::prelude::*;

use crate::science::simulation::acquisition::{ScannerModel, Sinograms};
use crate::science::simulation::anatomy::Anatomy;
use crate::science::simulation::osem::{ReconSettings, reconstruct};
use crate::science::simulation::phantom::OutsideFieldOfView;
use crate::science::simulation::scan::draw_object;
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
    /// The scanner's resolution and sensitivity.
    pub scanner: ScannerModel,
    /// What each patient's volume shows, taken in turn by seed: the fitted torso (the
    /// original layout), or sections of the torso at true length.
    pub anatomies: Vec<Anatomy>,
}

impl SimulatedData {
    /// The original simulator: the fitted torso, the default scanner.
    pub fn original(grid: Grid, recon: ReconVersion, seconds_per_bed: f64, count_levels: Vec<f64>) -> Self {
        Self {
            grid,
            recon,
            seconds_per_bed,
            count_levels,
            scanner: ScannerModel::default(),
            anatomies: vec![Anatomy::FittedTorso],
        }
    }

    /// Checks that each of `patients` patients from `first_seed` on fits the field of view,
    /// by drawing their phantoms (cheap beside the reconstructions that follow).
    pub fn check_field_of_view(&self, first_seed: u64, patients: u64) -> Result<(), OutsideFieldOfView> {
        for seed in first_seed..first_seed + patients {
            draw_object(seed, self.grid, &self.anatomy_of(seed)).check_field_of_view()?;
        }
        Ok(())
    }

    /// The anatomy of patient `seed`.
    pub fn anatomy_of(&self, seed: u64) -> Anatomy {
        if self.anatomies.is_empty() {
            return Anatomy::FittedTorso;
        }
        self.anatomies[(seed % self.anatomies.len() as u64) as usize]
    }

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
        let anatomy = self.anatomy_of(seed);
        let scan = Scan::acquire_anatomy(seed, self.grid, &anatomy, self.scanner.clone(), self.seconds_per_bed);
        let recon = ReconSettings { object_continues_axially: !anatomy.is_fitted(), ..self.recon.settings() };
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
        let data = SimulatedData::original(Grid::new(32, 8), ReconVersion::V1, 120.0, vec![0.25, 0.5, 1.0]);
        let pair = data.held_out_pair(7, 3).expect("held-out pair");
        let levels: Vec<f64> = pair.inputs.iter().map(|(level, _)| *level).collect();
        assert_eq!(levels, [0.25, 0.25, 0.25, 0.5, 0.5, 1.0], "3 at 25 %, the 2 that fit at 50 %, 1 at full count");
        // Disjoint parts of the counts are different noise, not one image repeated.
        assert_ne!(pair.inputs[0].1.data, pair.inputs[1].1.data);
        let regions = pair.regions.expect("simulated data know their regions");
        assert_eq!(regions.lesions.len(), data.grid.voxels());
        assert!(regions.lesions.iter().any(|l| *l > 0), "the liver lesion is drawn");
    }

    #[test]
    fn patients_take_the_sections_in_turn_at_true_length() {
        use crate::science::simulation::anatomy::Section;
        let data = SimulatedData {
            scanner: ScannerModel::with_resolution(6.0),
            anatomies: vec![Anatomy::Torso { section: Section::Liver }, Anatomy::Torso { section: Section::Thorax }],
            ..SimulatedData::original(Grid::with_spacing(64, 8, 6.5, 3.0), ReconVersion::V1, 120.0, vec![1.0])
        };
        // Seed 10 is even: the liver section, with liver on every slice.
        let liver = data.pair(10).regions.expect("regions").liver;
        assert!(liver.chunks_exact(64 * 64).all(|slice| slice.iter().any(|v| *v)), "liver on every slice");
        // Seed 11 is odd: the thorax, above the liver.
        assert_eq!(data.anatomy_of(11), Anatomy::Torso { section: Section::Thorax });
        let thorax = data.pair(11).regions.expect("regions").liver;
        assert!(!thorax.iter().any(|v| *v), "no liver in the thorax section");
    }
}
