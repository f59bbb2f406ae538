//! The test scan of the paper's experiment: one simulated patient with a liver lesion
//! (and a few more lesions), its R i.i.d. low-count realizations (disjoint parts of its
//! counts), each reconstructed with both OSEM versions beside the reconstruction of
//! noiseless data (the reference each version can reach at best), and an N2N pair for the
//! online rounds, at the realizations' count level. The phantom is the secondary truth.

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
    /// The same version's reconstruction of noiseless data: what OSEM itself recovers, so a
    /// bias against it is what noise and denoising cost, not OSEM's partial-volume loss.
    pub reference: Image3,
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
    /// For each lesion, the tissue around it: the ring 2 to 3 voxels from its edge (in
    /// plane; one slice above and below), in the lesion's own tissue, outside every lesion.
    pub backgrounds: Vec<Vec<bool>>,
    pub v1: VersionData,
    pub v2: VersionData,
    /// The online rounds' N2N pair: two more realizations of the realizations' count
    /// level, from a second scan of the patient (independent of every test realization),
    /// reconstructed with v2.
    pub v2_pair: N2nPair,
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
        let noiseless = scan.noiseless();
        let recon_all = |version: ReconVersion| {
            let settings = version.settings();
            let mut images: Vec<Image3> = std::iter::once(&noiseless)
                .chain(&parts)
                .collect::<Vec<_>>()
                .par_iter()
                .map(|counts| reconstruct(&scan.system, counts, &settings, &|| {}))
                .collect();
            let reference = images.remove(0);
            VersionData { version, realizations: images, reference }
        };
        let (v1, v2) = (recon_all(ReconVersion::V1), recon_all(ReconVersion::V2));
        let pair = scan.follow_up(1).realizations(2, scale.realization_fraction)?;
        let v2_settings = ReconVersion::V2.settings();
        let v2_pair = N2nPair {
            a: reconstruct(&scan.system, &pair[0], &v2_settings, &|| {}),
            b: reconstruct(&scan.system, &pair[1], &v2_settings, &|| {}),
        };
        let phantom = &scan.phantom;
        let liver = phantom.liver.iter().zip(&phantom.lesions).map(|(l, s)| *l && *s == 0).collect();
        let lesions = lesion_masks(phantom);
        let backgrounds = lesions.iter().map(|(lesion, mask)| background_ring(phantom, lesion, mask)).collect();
        Ok(Self { seed, truth: phantom.activity.clone(), liver, lesions, backgrounds, v1, v2, v2_pair })
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

/// The voxels 2 to 3 voxels from `mask`'s edge in plane (Chebyshev distance, within one
/// slice of a lesion voxel) whose true activity is the lesion's surrounding tissue's, outside
/// every lesion: the background a contrast recovery is read against.
fn background_ring(phantom: &Phantom, lesion: &Lesion, mask: &[bool]) -> Vec<bool> {
    const INNER: usize = 1;
    const OUTER: usize = 3;
    let grid = phantom.activity.grid;
    let (n, plane) = (grid.size, grid.pixels_per_slice());
    let mut near = vec![false; mask.len()];
    let mut ring = vec![false; mask.len()];
    for index in mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i) {
        let (z, y, x) = (index / plane, (index % plane) / n, index % n);
        for nz in z.saturating_sub(1)..=(z + 1).min(grid.slices - 1) {
            for ny in y.saturating_sub(OUTER)..=(y + OUTER).min(n - 1) {
                for nx in x.saturating_sub(OUTER)..=(x + OUTER).min(n - 1) {
                    let neighbour = nz * plane + ny * n + nx;
                    if ny.abs_diff(y) <= INNER && nx.abs_diff(x) <= INNER {
                        near[neighbour] = true;
                    }
                    ring[neighbour] = true;
                }
            }
        }
    }
    let tissue = lesion.suv / lesion.contrast;
    ring.iter()
        .zip(&near)
        .zip(&phantom.lesions)
        .zip(&phantom.activity.data)
        .map(|(((in_ring, is_near), label), value)| {
            *in_ring && !*is_near && *label == 0 && (f64::from(*value) - tissue).abs() <= 0.15 * tissue
        })
        .collect()
}
