//! One simulated PET scan of a phantom: the system model, the full-count data, and the
//! lower-count data sets cut from those counts (N2N halves, low-count realizations).

use super::acquisition::{ScannerModel, Sinograms, SplitError, SystemModel, poisson, split, thin};
use super::anatomy::Anatomy;
use super::nema;
use super::phantom::Phantom;
use crate::science::image::Grid;

/// Random streams (with the seed) of each data set, so each is reproducible on its own.
const STREAM_FULL: u64 = 1;
const STREAM_HALVES: u64 = 2;
const STREAM_REALIZATIONS: u64 = 3;
const STREAM_THINNED: u64 = 100;
/// Seeds of follow-up visits: far from any patient seed, so no visit repeats another draw.
const FOLLOW_UP_SEED_STEP: u64 = 0x9E37_79B9;

/// Draws `anatomy` for `seed` on `grid`: a patient's torso, or the NEMA IEC body phantom.
pub fn draw_object(seed: u64, grid: Grid, anatomy: &Anatomy) -> Phantom {
    match anatomy {
        Anatomy::FittedTorso => Phantom::draw_torso(seed, grid, None),
        Anatomy::Torso { section } => Phantom::draw_torso(seed, grid, Some(*section)),
        Anatomy::NemaIec { contrast } => nema::draw(seed, grid, *contrast),
    }
}

/// A phantom scanned for `duration_s` seconds.
#[derive(Debug, Clone)]
pub struct Scan {
    pub seed: u64,
    pub phantom: Phantom,
    pub system: SystemModel,
    /// The counts of the whole scan.
    pub counts: Sinograms,
}

impl Scan {
    /// Draws the phantom for `seed` and its full-count data.
    pub fn acquire(seed: u64, grid: Grid, scanner: ScannerModel, duration_s: f64) -> Self {
        Self::acquire_anatomy(seed, grid, &Anatomy::FittedTorso, scanner, duration_s)
    }

    /// Draws `anatomy` for `seed` and its full-count data.
    pub fn acquire_anatomy(seed: u64, grid: Grid, anatomy: &Anatomy, scanner: ScannerModel, duration_s: f64) -> Self {
        let phantom = draw_object(seed, grid, anatomy);
        let system = SystemModel::new(&phantom.activity, &phantom.attenuation, scanner, duration_s);
        let counts = poisson(&system.expected(&phantom.activity), seed, STREAM_FULL);
        Self { seed, phantom, system, counts }
    }

    /// A later scan of the same patient with the same scanner and duration: the same phantom
    /// counted again with independent noise (`visit` 1, 2, … picks the draw). Its halves and
    /// realizations are independent of this scan's too.
    pub fn follow_up(&self, visit: u64) -> Self {
        let seed = self.seed.wrapping_add(visit.wrapping_mul(FOLLOW_UP_SEED_STEP));
        let counts = poisson(&self.system.expected(&self.phantom.activity), seed, STREAM_FULL);
        Self { seed, phantom: self.phantom.clone(), system: self.system.clone(), counts }
    }

    /// The data with no noise (the limit of infinite counts), for training targets.
    pub fn noiseless(&self) -> Sinograms {
        self.system.expected(&self.phantom.activity)
    }

    /// The two Noise2Noise halves: each count to A or B with probability ½.
    pub fn n2n_halves(&self) -> (Sinograms, Sinograms) {
        thin(&self.counts, 0.5, self.seed, STREAM_HALVES)
    }

    /// `parts` i.i.d. realizations of `fraction` of the scan each (disjoint parts of the counts).
    pub fn realizations(&self, parts: usize, fraction: f64) -> Result<Vec<Sinograms>, SplitError> {
        split(&self.counts, parts, fraction, self.seed ^ STREAM_REALIZATIONS)
    }

    /// One realization of `fraction` of the scan; `variant` picks an independent draw.
    pub fn thinned(&self, fraction: f64, variant: u64) -> Sinograms {
        thin(&self.counts, fraction, self.seed, STREAM_THINNED + variant).0
    }
}
