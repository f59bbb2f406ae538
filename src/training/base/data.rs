//! Where the base model's training pairs come from: the simulator (each patient scanned at
//! several count levels, the target being the reconstruction of noiseless data), or folders
//! of real paired DICOM series (`<pair>/input/` and `<pair>/target/`).

use std::path::Path;

use anyhow::Context;
use rayon::prelude::*;

use crate::simulation::acquisition::ScannerModel;
use crate::simulation::osem::reconstruct;
use crate::simulation::{Grid, Image3, ReconVersion, Scan};
use crate::training::pair_source::series_image;

/// Masks of a held-out study, for the report's regional means.
#[derive(Debug, Clone, Default)]
pub struct TrainingRegions {
    pub liver: Vec<bool>,
    pub lesions: Vec<bool>,
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
    pub train_slices: Option<std::ops::Range<usize>>,
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
    /// The pair of one simulated patient.
    pub fn pair(&self, seed: u64) -> TrainingPair {
        let scan = Scan::acquire(seed, self.grid, ScannerModel::default(), self.seconds_per_bed);
        let recon = self.recon.settings();
        let target = reconstruct(&scan.system, &scan.noiseless(), &recon, &|| {});
        let inputs = self
            .count_levels
            .par_iter()
            .enumerate()
            .map(|(variant, level)| {
                let counts = if *level >= 1.0 { scan.counts.clone() } else { scan.thinned(*level, variant as u64) };
                (*level, reconstruct(&scan.system, &counts, &recon, &|| {}))
            })
            .collect();
        let phantom = &scan.phantom;
        let regions = TrainingRegions {
            liver: phantom.liver.iter().zip(&phantom.lesions).map(|(l, s)| *l && *s == 0).collect(),
            lesions: phantom.lesions.iter().map(|l| *l > 0).collect(),
        };
        TrainingPair { name: format!("sim-{seed:05}"), inputs, target, regions: Some(regions), train_slices: None }
    }
}

/// Reads a DICOM series folder as a normalised volume on a square grid.
fn read_series(folder: &Path) -> anyhow::Result<Image3> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))? {
        let path = entry?.path();
        if path.is_file() {
            files.push(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
        }
    }
    Ok(series_image(&files).with_context(|| format!("reading the series in {}", folder.display()))?.image)
}

/// Pairs from `dir/<name>/input` and `dir/<name>/target` (same geometry), sorted by name.
pub fn dicom_pairs(dir: &Path) -> anyhow::Result<Vec<TrainingPair>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("input").is_dir() && p.join("target").is_dir())
        .collect();
    names.sort();
    anyhow::ensure!(!names.is_empty(), "{} holds no <pair>/input and <pair>/target folders", dir.display());
    names
        .iter()
        .map(|path| {
            let input = read_series(&path.join("input"))?;
            let target = read_series(&path.join("target"))?;
            anyhow::ensure!(input.grid == target.grid, "{}: input and target differ in geometry", path.display());
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Ok(TrainingPair { name, inputs: vec![(1.0, input)], target, regions: None, train_slices: None })
        })
        .collect()
}
