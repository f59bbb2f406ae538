//! The test scan of the paper's experiment: one simulated patient with a liver lesion
//! (and a few more lesions), its R i.i.d. low-count realizations (disjoint parts of its
//! counts), each reconstructed with both OSEM versions, and its two N2N halves for the
//! online round. The truth is the phantom itself.

use rayon::prelude::*;

use super::scale::PaperScale;
use crate::science::simulation::acquisition::ScannerModel;
use crate::science::simulation::osem::reconstruct;
use crate::science::simulation::phantom::{Lesion, Phantom};
use crate::science::simulation::{Image3, ReconVersion, Scan};
use crate::science::training::n2n_round::N2nPair;

/// The test scan's data for one reconstruction version.
#[derive(Debug, Clone)]
pub struct VersionData {
    pub version: ReconVersion,
    /// The R low-count reconstructions.
    pub realizations: Vec<Image3>,
}

/// The test patient and its reconstructions.
#[derive(Debug, Clone)]
pub struct TestScan {
    pub seed: u64,
    /// True activity (SUV).
    pub truth: Image3,
    /// Liver voxels outside every lesion.
    pub liver: Vec<bool>,
    /// Each lesion with its voxels (lesions no voxel lies in are left out).
    pub lesions: Vec<(Lesion, Vec<bool>)>,
    pub v1: VersionData,
    pub v2: VersionData,
    /// The full scan's two halves, reconstructed with v2 (the online round's pair).
    pub v2_halves: N2nPair,
}

impl TestScan {
    pub fn version(&self, version: ReconVersion) -> &VersionData {
        match version {
            ReconVersion::V1 => &self.v1,
            ReconVersion::V2 => &self.v2,
        }
    }

    /// The first patient from `scale.test_seed` with enough lesions, scanned and reconstructed.
    pub fn simulate(scale: &PaperScale) -> anyhow::Result<Self> {
        let grid = scale.grid();
        let seed = (scale.test_seed..scale.test_seed + 1000)
            .find(|seed| lesion_masks(&Phantom::generate(*seed, grid)).len() >= scale.min_test_lesions)
            .ok_or_else(|| anyhow::anyhow!("no test patient with {} lesions", scale.min_test_lesions))?;
        let scan = Scan::acquire(seed, grid, ScannerModel::default(), scale.test_seconds_per_bed);
        let parts = scan.realizations(scale.realizations, scale.realization_fraction)?;
        let recon_all = |version: ReconVersion| VersionData {
            version,
            realizations: parts
                .par_iter()
                .map(|counts| reconstruct(&scan.system, counts, &version.settings(), &|| {}))
                .collect(),
        };
        let (v1, v2) = (recon_all(ReconVersion::V1), recon_all(ReconVersion::V2));
        let (a, b) = scan.n2n_halves();
        let v2_settings = ReconVersion::V2.settings();
        let v2_halves = N2nPair {
            a: reconstruct(&scan.system, &a, &v2_settings, &|| {}),
            b: reconstruct(&scan.system, &b, &v2_settings, &|| {}),
        };
        let phantom = &scan.phantom;
        let liver = phantom.liver.iter().zip(&phantom.lesions).map(|(l, s)| *l && *s == 0).collect();
        Ok(Self { seed, truth: phantom.activity.clone(), liver, lesions: lesion_masks(phantom), v1, v2, v2_halves })
    }

    /// The slice through the centre of the first (liver) lesion.
    pub fn lesion_slice(&self) -> usize {
        let plane = self.truth.grid.pixels_per_slice();
        self.lesions
            .first()
            .and_then(|(_, mask)| {
                let voxels: Vec<usize> = mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i / plane).collect();
                (!voxels.is_empty()).then(|| voxels[voxels.len() / 2])
            })
            .unwrap_or(self.truth.grid.slices / 2)
    }
}

/// Each lesion of the phantom that covers at least one voxel, with its mask.
fn lesion_masks(phantom: &Phantom) -> Vec<(Lesion, Vec<bool>)> {
    phantom
        .lesion_list
        .iter()
        .map(|lesion| (lesion.clone(), phantom.lesions.iter().map(|l| *l == lesion.label).collect::<Vec<bool>>()))
        .filter(|(_, mask)| mask.iter().any(|m| *m))
        .collect()
}
