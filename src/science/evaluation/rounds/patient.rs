//! A simulated patient for judging rounds: the full-count series a hospital would denoise,
//! its two N2N halves, the noiseless reconstruction (the truth) and a later full-count scan
//! with its own halves, all reconstructed with one version of OSEM.

use rayon::prelude::*;

use crate::science::image::{Grid, Image3};
use crate::science::simulation::acquisition::ScannerModel;
use crate::science::simulation::osem::reconstruct;
use crate::science::simulation::phantom::Lesion;
use crate::science::simulation::{ReconVersion, Scan};
use crate::science::training::n2n_round::N2nPair;

/// One visit: the series a hospital sends.
#[derive(Debug, Clone)]
pub struct Visit {
    pub full: Image3,
    pub halves: N2nPair,
}

/// A patient with known truth.
#[derive(Debug, Clone)]
pub struct Patient {
    pub seed: u64,
    pub recon: ReconVersion,
    /// The reconstruction of noiseless data: what a perfect denoiser would give.
    pub truth: Image3,
    pub first: Visit,
    /// A later scan of the same patient (same anatomy, independent noise).
    pub follow_up: Visit,
    pub body: Vec<bool>,
    /// The liver without its lesions.
    pub liver: Vec<bool>,
    /// 0 outside lesions, else the lesion's label.
    pub lesions: Vec<u8>,
    pub lesion_list: Vec<Lesion>,
}

impl Patient {
    /// Scans patient `seed` twice for `seconds_per_bed` and reconstructs everything with `recon`.
    pub fn simulate(seed: u64, grid: Grid, recon: ReconVersion, seconds_per_bed: f64) -> Self {
        let scan = Scan::acquire(seed, grid, ScannerModel::default(), seconds_per_bed);
        let later = scan.follow_up(1);
        let settings = recon.settings();
        let (a, b) = scan.n2n_halves();
        let (later_a, later_b) = later.n2n_halves();
        let sinograms = vec![scan.noiseless(), scan.counts.clone(), a, b, later.counts.clone(), later_a, later_b];
        let mut images: Vec<Image3> =
            sinograms.into_par_iter().map(|counts| reconstruct(&scan.system, &counts, &settings, &|| {})).collect();
        let mut next = || images.remove(0);
        let truth = next();
        let first = Visit { full: next(), halves: N2nPair { a: next(), b: next() } };
        let follow_up = Visit { full: next(), halves: N2nPair { a: next(), b: next() } };
        let phantom = scan.phantom;
        let liver = phantom.liver.iter().zip(&phantom.lesions).map(|(l, s)| *l && *s == 0).collect();
        Self {
            seed,
            recon,
            truth,
            first,
            follow_up,
            body: phantom.body,
            liver,
            lesions: phantom.lesions,
            lesion_list: phantom.lesion_list,
        }
    }
}
