//! A whole simulated study on disk: the series a scanner would send (full count, N2N halves,
//! low-count realizations) as DICOM, plus the ground truth and label maps as raw files with
//! a JSON sidecar, and a manifest. The layout is documented in docs/simulator.md:
//!
//! ```text
//! OUT/sim-<seed>/study.json            manifest: settings, patient, series, counts
//!               full-count/IM0001.dcm  …one file per slice
//!               n2n-half-a/  n2n-half-b/
//!               low-count-01/ … low-count-NN/
//!               truth/activity_suv.f32 noiseless_recon_suv.f32 body.u8 liver.u8 lesions.u8 truth.json
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::simulated_series::{SeriesHeader, StudyHeader, derived_uid, write_series};
use crate::science::image::{Grid, Image3};
use crate::science::simulation::acquisition::{ScannerModel, Sinograms};
use crate::science::simulation::anatomy::Anatomy;
use crate::science::simulation::osem::{ReconSettings, ReconVersion, reconstruct};
use crate::science::simulation::scan::Scan;

/// What to simulate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SimulationSettings {
    pub seed: u64,
    pub grid: Grid,
    pub recon: ReconVersion,
    /// Full-count scan time (s per bed position).
    pub seconds_per_bed: f64,
    /// Number of i.i.d. low-count realizations.
    pub realizations: usize,
    /// Share of the full counts in each realization (realizations × fraction ≤ 1).
    pub low_count_fraction: f64,
    pub scanner: ScannerModel,
    /// What is drawn: the torso (fitted onto the slices, or a section at true length) or
    /// the NEMA IEC body phantom.
    pub anatomy: Anatomy,
    /// Replaces the reconstruction version's Gaussian post-filter (mm FWHM; 0 for none).
    pub post_filter_mm: Option<f64>,
}

/// The SeriesDescription of each role; the N2N halves and low-count series carry the markers
/// that petal's default rules match (they are training material, not denoised).
pub fn series_description(recon: ReconVersion, anatomy: &Anatomy, role: &SeriesRole) -> String {
    let object = if matches!(anatomy, Anatomy::NemaIec { .. }) { "NEMA IEC" } else { "WB FDG" };
    let base = format!("PET {object} {}", recon.name());
    match role {
        SeriesRole::FullCount => format!("{base} full-count"),
        SeriesRole::N2nHalf(half) => format!("{base} N2N half {half}"),
        SeriesRole::LowCount { index, fraction } => {
            format!("{base} low-count {}% r{:02}", (fraction * 100.0).round(), index + 1)
        }
    }
}

/// Which series of the study.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesRole {
    FullCount,
    N2nHalf(char),
    LowCount { index: usize, fraction: f64 },
}

impl SeriesRole {
    /// The series' folder name in the study directory.
    pub fn folder(&self) -> String {
        match self {
            SeriesRole::FullCount => "full-count".into(),
            SeriesRole::N2nHalf(half) => format!("n2n-half-{}", half.to_ascii_lowercase()),
            SeriesRole::LowCount { index, .. } => format!("low-count-{:02}", index + 1),
        }
    }

    fn series_number(&self) -> i32 {
        match self {
            SeriesRole::FullCount => 2,
            SeriesRole::N2nHalf('A') => 3,
            SeriesRole::N2nHalf(_) => 4,
            SeriesRole::LowCount { index, .. } => 11 + *index as i32,
        }
    }
}

/// One series as written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WrittenSeries {
    pub folder: String,
    pub series_uid: String,
    pub description: String,
    pub fraction: f64,
    pub counts: f64,
}

/// Manifest of a written study (study.json).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StudyManifest {
    pub settings: SimulationSettings,
    pub patient: crate::science::simulation::phantom::PatientParameters,
    pub patient_id: String,
    pub study_uid: String,
    pub reconstruction: crate::science::simulation::osem::ReconSettings,
    pub bqml_per_suv: f64,
    pub series: Vec<WrittenSeries>,
    pub truth: String,
}

/// Reports progress: `total` work units are announced once, then one per finished slice.
pub trait Progress: Sync {
    fn start(&self, total: u64);
    fn slice_done(&self);
}

/// No progress reporting.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: u64) {}
    fn slice_done(&self) {}
}

impl SimulationSettings {
    /// A study as the original simulator makes it: 120 s per bed, one low-count
    /// realization of 10 %, the default scanner, the torso fitted onto the slices.
    pub fn original(seed: u64, grid: Grid, recon: ReconVersion) -> Self {
        Self {
            seed,
            grid,
            recon,
            seconds_per_bed: 120.0,
            realizations: 1,
            low_count_fraction: 0.1,
            scanner: ScannerModel::default(),
            anatomy: Anatomy::FittedTorso,
            post_filter_mm: None,
        }
    }

    /// Folder of this study inside the output directory.
    pub fn study_folder(&self) -> String {
        format!("sim-{:05}", self.seed)
    }

    /// What sets this study apart from the original simulator's defaults, for its UIDs; empty
    /// for those defaults, so that their UIDs stay as they were.
    fn variant_label(&self) -> String {
        let mut label = String::new();
        if self.grid != Grid::new(self.grid.size, self.grid.slices) {
            label += &format!("/{}x{}mm", self.grid.pixel_mm, self.grid.slice_mm);
        }
        if self.scanner != ScannerModel::default() {
            label += &format!(
                "/psf{}x{}mm/{}/{}",
                self.scanner.detector_blur_fwhm_mm,
                self.scanner.axial_blur_fwhm_mm,
                self.scanner.sensitivity,
                self.scanner.background_fraction
            );
        }
        if !self.anatomy.is_fitted() {
            label += &format!("/{}", self.anatomy.label());
        }
        if let Some(filter) = self.post_filter_mm {
            label += &format!("/filter{filter}mm");
        }
        label
    }

    /// The reconstruction the series get: the version's, with the post-filter replaced
    /// when one is set.
    pub fn reconstruction(&self) -> ReconSettings {
        let mut settings = self.recon.settings();
        settings.object_continues_axially = !self.anatomy.is_fitted();
        if let Some(filter) = self.post_filter_mm {
            settings.post_filter_fwhm_mm = filter;
        }
        settings
    }

    fn study_header(&self, scan: &Scan) -> StudyHeader {
        let uid_seed = format!(
            "petal-sim/{}/{}x{}x{}/{}/{}s/{}x{}",
            self.seed,
            self.grid.size,
            self.grid.size,
            self.grid.slices,
            self.recon.name(),
            self.seconds_per_bed,
            self.realizations,
            self.low_count_fraction
        ) + &self.variant_label();
        StudyHeader {
            patient: scan.phantom.patient.clone(),
            patient_id: format!("SIM-{:05}", self.seed),
            patient_name: format!("Phantom^Sim{:05}", self.seed),
            study_uid: derived_uid(&[&uid_seed, "study"]),
            frame_of_reference_uid: derived_uid(&[&uid_seed, "frame of reference"]),
            uid_seed,
            seconds_per_bed: self.seconds_per_bed,
        }
    }
}

/// Simulates the study and writes it under `output/sim-<seed>/`; returns its manifest.
pub fn write_study(
    settings: &SimulationSettings,
    output: &Path,
    progress: &dyn Progress,
) -> anyhow::Result<StudyManifest> {
    let scan = Scan::acquire_anatomy(
        settings.seed,
        settings.grid,
        &settings.anatomy,
        settings.scanner.clone(),
        settings.seconds_per_bed,
    );
    scan.phantom.check_field_of_view().context("the object does not fit the field of view")?;
    let (half_a, half_b) = scan.n2n_halves();
    let realizations = scan
        .realizations(settings.realizations, settings.low_count_fraction)
        .context("cutting the low-count realizations from the counts")?;
    let mut data: Vec<(SeriesRole, Sinograms)> = vec![
        (SeriesRole::FullCount, scan.counts.clone()),
        (SeriesRole::N2nHalf('A'), half_a),
        (SeriesRole::N2nHalf('B'), half_b),
    ];
    data.extend(
        realizations
            .into_iter()
            .enumerate()
            .map(|(index, counts)| (SeriesRole::LowCount { index, fraction: settings.low_count_fraction }, counts)),
    );

    // Every series, then the noiseless reconstruction.
    progress.start(((data.len() + 1) * settings.grid.slices) as u64);
    let study_dir = output.join(settings.study_folder());
    let header = settings.study_header(&scan);
    let recon = settings.reconstruction();
    let mut series = Vec::new();
    for (role, counts) in &data {
        let image = reconstruct(&scan.system, counts, &recon, &|| progress.slice_done());
        let series_header = SeriesHeader {
            role: role.folder(),
            series_number: role.series_number(),
            description: series_description(settings.recon, &settings.anatomy, role),
            reconstruction: recon.describe(),
            fraction: counts.fraction,
        };
        let folder = role.folder();
        write_series(&header, &series_header, &image, &study_dir.join(&folder))
            .with_context(|| format!("writing the {folder} series"))?;
        series.push(WrittenSeries {
            folder,
            series_uid: derived_uid(&[&header.uid_seed, &series_header.role]),
            description: series_header.description,
            fraction: counts.fraction,
            counts: counts.total(),
        });
    }
    let noiseless = reconstruct(&scan.system, &scan.noiseless(), &recon, &|| progress.slice_done());
    write_truth(&scan, &noiseless, &study_dir.join("truth"))?;
    let manifest = StudyManifest {
        settings: settings.clone(),
        patient: scan.phantom.patient.clone(),
        patient_id: header.patient_id.clone(),
        study_uid: header.study_uid.clone(),
        reconstruction: recon,
        bqml_per_suv: header.bqml_per_suv(),
        series,
        truth: "truth/truth.json".into(),
    };
    let path = study_dir.join("study.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(manifest)
}

/// The truth sidecar (truth.json).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TruthSidecar {
    /// Array order and type of every raw file.
    pub layout: String,
    pub grid: Grid,
    /// Patient position (mm) of the centre of voxel (0, 0, 0); slice 0 is the most inferior.
    pub first_voxel_mm: [f64; 3],
    pub activity: String,
    /// The same OSEM as the series, of noiseless data: what a perfect denoiser of these
    /// series would give (it keeps OSEM's resolution, which `activity` does not have).
    pub noiseless_reconstruction: String,
    pub activity_units: String,
    pub body: String,
    pub liver: String,
    pub lesions: String,
    pub lesion_list: Vec<crate::science::simulation::phantom::Lesion>,
    pub uptake: crate::science::simulation::phantom::Uptake,
}

fn write_truth(scan: &Scan, noiseless: &Image3, directory: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory).with_context(|| format!("creating {}", directory.display()))?;
    let phantom = &scan.phantom;
    let grid = phantom.activity.grid;
    let write = |name: &str, bytes: Vec<u8>| -> anyhow::Result<String> {
        let path = directory.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(name.to_owned())
    };
    let sidecar = TruthSidecar {
        layout: "raw little-endian, index (z * size + y) * size + x; f32 for activity, u8 for labels".into(),
        grid,
        first_voxel_mm: [grid.x_mm(0), grid.y_mm(0), grid.z_mm(0)],
        activity: write("activity_suv.f32", phantom.activity.data.iter().flat_map(|v| v.to_le_bytes()).collect())?,
        noiseless_reconstruction: write(
            "noiseless_recon_suv.f32",
            noiseless.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )?,
        activity_units: "SUVbw".into(),
        body: write("body.u8", phantom.body.iter().map(|b| u8::from(*b)).collect())?,
        liver: write("liver.u8", phantom.liver.iter().map(|b| u8::from(*b)).collect())?,
        lesions: write("lesions.u8", phantom.lesions.clone())?,
        lesion_list: phantom.lesion_list.clone(),
        uptake: phantom.patient.uptake.clone(),
    };
    write("truth.json", serde_json::to_vec_pretty(&sidecar)?)?;
    Ok(())
}

/// Reads a raw f32 volume written by [`write_study`].
pub fn read_f32_volume(path: &Path, grid: Grid) -> anyhow::Result<Image3> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() == grid.voxels() * 4,
        "{} holds {} bytes, not {} voxels of f32",
        path.display(),
        bytes.len(),
        grid.voxels()
    );
    let data = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok(Image3 { grid, data })
}

/// Where the manifest of the study for `seed` lies in `output`.
pub fn manifest_path(output: &Path, seed: u64) -> PathBuf {
    output.join(format!("sim-{seed:05}")).join("study.json")
}
