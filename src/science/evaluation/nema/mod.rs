//! `petal eval nema`: the NEMA IEC body phantom through OSEM and through petal, read as a PET
//! physicist reads it ([`measures`]).
//!
//! One long acquisition of the phantom is split into independent realizations of the
//! full-count scan (disjoint parts of its counts); each lower count level thins every
//! realization. Each realization is reconstructed with the OSEM the model was trained on and
//! denoised by the model; the figures are averaged over realizations. The same measures of
//! the OSEM of noiseless data (the same iterations and filter) say what the reconstruction
//! itself recovers. At each count level, a Gaussian post-filter on OSEM is tuned until its
//! background voxel CoV matches petal's: the comparison at matched noise. (Background
//! variability cannot always be matched: it holds the background's structure as well as its
//! noise, OSEM's own non-uniformity and the spill from spheres and lung insert, which a wide
//! filter raises. The filtered images' variability is reported beside petal's.)

pub mod figures;
pub mod measures;
pub mod report;

use crate::domain::DenoiseStrength;
use crate::science::image::{Grid, Image3};
use crate::science::model::burn_denoise::{BurnDenoiseError, denoise_with_burn};
use crate::science::model::directory::StoredModel;
use crate::science::simulation::ReconVersion;
use crate::science::simulation::acquisition::{ScannerModel, SplitError, thin};
use crate::science::simulation::anatomy::Anatomy;
use crate::science::simulation::filter::post_filter;
use crate::science::simulation::osem::{ReconSettings, reconstruct};
use crate::science::simulation::scan::Scan;
use measures::{NemaMeasures, PhantomRois, background_cov_percent};

/// Seed of the phantom's acquisition (it sets only the noise: the phantom is fixed).
const ACQUISITION_SEED: u64 = 0x4e45_4d41;
/// Random stream of the thinning to lower count levels.
const THINNING_STREAM: u64 = 500;
/// Widest Gaussian the matched-noise search tries (mm FWHM).
const WIDEST_FILTER_MM: f64 = 30.0;

/// Why an evaluation stopped.
#[derive(Debug, thiserror::Error)]
pub enum NemaError {
    #[error("cutting the realizations from the counts: {0}")]
    Split(#[from] SplitError),
    #[error("denoising a realization: {0}")]
    Denoise(#[from] BurnDenoiseError),
}

/// How large the evaluation is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NemaScale {
    pub name: &'static str,
    pub grid: Grid,
    /// The scanner's resolution (mm FWHM).
    pub fwhm_mm: f64,
    /// Scan time of the full-count level (s): sets its noise. 800 s aims at an OSEM (v1)
    /// background voxel CoV near 10 % on 4 × 4 × 3 mm voxels: the quick run, 120 s on
    /// 5 × 5 × 3 mm voxels, gives 20.6 %, and CoV goes as one over the root of the counts
    /// per voxel.
    pub seconds_full: f64,
    pub realizations: usize,
}

impl NemaScale {
    /// 4 × 4 × 3 mm voxels, as accreditation asks.
    pub fn default_scale(realizations: usize) -> Self {
        Self {
            name: "4x4x3mm",
            grid: Grid::with_spacing(96, 16, 4.0, 3.0),
            fwhm_mm: 6.0,
            seconds_full: 800.0,
            realizations,
        }
    }

    /// A smoke run for the tests (5 mm pixels, so 64 of them hold the phantom).
    pub fn quick(realizations: usize) -> Self {
        Self {
            name: "quick",
            grid: Grid::with_spacing(64, 16, 5.0, 3.0),
            seconds_full: 120.0,
            ..Self::default_scale(realizations)
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NemaPlan {
    pub scale: NemaScale,
    /// Count levels, as shares of the full-count scan.
    pub counts: Vec<f64>,
    /// Sphere : background activity.
    pub contrast: f64,
    /// The reconstruction the model was trained on.
    pub recon: ReconVersion,
    /// The denoising strength, as the server applies it.
    pub strength: DenoiseStrength,
}

/// The slice through the spheres of the first realization at each count level: OSEM, petal,
/// OSEM filtered to petal's noise, and OSEM of noiseless data (for nema-slices.png).
#[derive(Debug, Clone, PartialEq)]
pub struct SphereSlices {
    /// Pixels across each slice.
    pub size: usize,
    pub rows: Vec<[Vec<f32>; 4]>,
}

/// Figures averaged over realizations, with the spread of SUVmax.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Averaged {
    pub mean: NemaMeasures,
    /// Per sphere: standard deviation of SUVmax across realizations over its mean, percent.
    pub suv_max_repeatability_percent: Vec<f64>,
}

/// One count level.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CountLevel {
    pub fraction: f64,
    pub osem: Averaged,
    pub petal: Averaged,
    /// The Gaussian (mm FWHM) that brings OSEM's background voxel CoV to petal's (0 when
    /// petal's is not lower).
    pub matched_filter_fwhm_mm: f64,
    pub matched_filter: Averaged,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NemaResults {
    pub model_sha256: String,
    /// The denoising strength (see [`DenoiseStrength`]).
    pub strength: DenoiseStrength,
    pub contrast: f64,
    pub realizations: usize,
    /// Voxel size (mm): pixel, pixel, slice.
    pub voxel_mm: [f64; 3],
    pub fwhm_mm: f64,
    pub reconstruction: String,
    /// OSEM of noiseless data: what the reconstruction itself recovers.
    pub noiseless_osem: NemaMeasures,
    /// SUV above which touching background voxels count as a false hot spot: the mean of
    /// the 10 mm sphere's ROI in OSEM of noiseless data.
    pub false_hot_spot_level: f64,
    pub levels: Vec<CountLevel>,
}

fn averaged(measures: &[NemaMeasures]) -> Averaged {
    let count = measures.len() as f64;
    let mean_of = |pick: &dyn Fn(&NemaMeasures) -> f64| measures.iter().map(pick).sum::<f64>() / count;
    let per_sphere = |pick: &dyn Fn(&NemaMeasures) -> &Vec<f64>| -> Vec<f64> {
        (0..pick(&measures[0]).len()).map(|k| measures.iter().map(|m| pick(m)[k]).sum::<f64>() / count).collect()
    };
    let suv_max = per_sphere(&|m| &m.suv_max);
    let suv_max_repeatability_percent = suv_max
        .iter()
        .enumerate()
        .map(|(k, mean)| {
            let variance = measures.iter().map(|m| (m.suv_max[k] - mean).powi(2)).sum::<f64>() / (count - 1.0).max(1.0);
            100.0 * variance.sqrt() / mean
        })
        .collect();
    Averaged {
        mean: NemaMeasures {
            crc: per_sphere(&|m| &m.crc),
            rc_max: per_sphere(&|m| &m.rc_max),
            suv_max,
            suv_peak: per_sphere(&|m| &m.suv_peak),
            rc_a50: per_sphere(&|m| &m.rc_a50),
            false_hot_spots: mean_of(&|m| m.false_hot_spots),
            background_mean: mean_of(&|m| m.background_mean),
            background_variability_percent: mean_of(&|m| m.background_variability_percent),
            background_cov_percent: mean_of(&|m| m.background_cov_percent),
            lung_residual_percent: mean_of(&|m| m.lung_residual_percent),
        },
        suv_max_repeatability_percent,
    }
}

/// OSEM with a Gaussian post-filter, continued beyond the end slices as the phantom is.
fn filtered(image: &Image3, fwhm_mm: f64) -> Image3 {
    let mut copy = image.clone();
    post_filter(&mut copy, fwhm_mm, true);
    copy
}

/// The Gaussian that brings the OSEM images' mean background voxel CoV down to `target`
/// (bisection; the CoV falls as the filter widens).
fn matched_filter(osem: &[Image3], rois: &PhantomRois, target: f64) -> f64 {
    let variability = |fwhm: f64| {
        osem.iter().map(|image| background_cov_percent(&filtered(image, fwhm), rois)).sum::<f64>() / osem.len() as f64
    };
    if variability(0.0) <= target {
        return 0.0;
    }
    let (mut low, mut high) = (0.0, WIDEST_FILTER_MM);
    for _ in 0..14 {
        let middle = 0.5 * (low + high);
        if variability(middle) > target {
            low = middle;
        } else {
            high = middle;
        }
    }
    0.5 * (low + high)
}

/// Runs the plan with `model`; `progress` hears each step.
pub fn evaluate(
    plan: &NemaPlan,
    model: &StoredModel,
    progress: &dyn Fn(&str),
) -> Result<(NemaResults, SphereSlices), NemaError> {
    let scale = &plan.scale;
    let realizations = scale.realizations.max(2);
    let scan = Scan::acquire_anatomy(
        ACQUISITION_SEED,
        scale.grid,
        &Anatomy::NemaIec { contrast: plan.contrast },
        ScannerModel::with_resolution(scale.fwhm_mm),
        scale.seconds_full * realizations as f64,
    );
    let recon = ReconSettings { object_continues_axially: true, ..plan.recon.settings() };
    let rois = PhantomRois::on(&scale.grid);
    let noiseless = reconstruct(&scan.system, &scan.noiseless(), &recon, &|| {});
    // A background spot counts as a false hot spot when it is as bright as the smallest
    // sphere's ROI in OSEM of noiseless data.
    let hot_spot_level = rois.spheres[0].iter().map(|i| f64::from(noiseless.data[*i])).sum::<f64>()
        / rois.spheres[0].len().max(1) as f64;
    let parts = scan.realizations(realizations, 1.0 / realizations as f64)?;
    let spheres_slice =
        measures::slice_nearest(&scale.grid, crate::science::simulation::nema::sphere_plane_mm(&scale.grid));
    let mut slices = SphereSlices { size: scale.grid.size, rows: Vec::new() };
    let mut levels = Vec::new();
    for fraction in &plan.counts {
        progress(&format!("{:.0} % of the counts: {realizations} realizations", fraction * 100.0));
        let mut osem = Vec::new();
        let mut denoised = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            let data = if *fraction < 1.0 {
                thin(part, *fraction, ACQUISITION_SEED, THINNING_STREAM + index as u64).0
            } else {
                part.clone()
            };
            let image = reconstruct(&scan.system, &data, &recon, &|| {});
            let mut output = denoise_with_burn(model, &image)?;
            plan.strength.blend_into(&image.data, &mut output.data);
            denoised.push(output);
            osem.push(image);
        }
        let measure = |images: &[Image3]| -> Vec<NemaMeasures> {
            images.iter().map(|image| NemaMeasures::of(image, &rois, plan.contrast, hot_spot_level)).collect()
        };
        let (osem_measures, petal_measures) = (measure(&osem), measure(&denoised));
        let petal = averaged(&petal_measures);
        let fwhm = matched_filter(&osem, &rois, petal.mean.background_cov_percent);
        let matched: Vec<Image3> = osem.iter().map(|image| filtered(image, fwhm)).collect();
        slices.rows.push([
            osem[0].slice(spheres_slice).to_vec(),
            denoised[0].slice(spheres_slice).to_vec(),
            matched[0].slice(spheres_slice).to_vec(),
            noiseless.slice(spheres_slice).to_vec(),
        ]);
        levels.push(CountLevel {
            fraction: *fraction,
            osem: averaged(&osem_measures),
            petal,
            matched_filter_fwhm_mm: fwhm,
            matched_filter: averaged(&measure(&matched)),
        });
    }
    let results = NemaResults {
        model_sha256: model.sha256.clone(),
        strength: plan.strength,
        contrast: plan.contrast,
        realizations,
        voxel_mm: [scale.grid.pixel_mm, scale.grid.pixel_mm, scale.grid.slice_mm],
        fwhm_mm: scale.fwhm_mm,
        reconstruction: recon.describe(),
        noiseless_osem: NemaMeasures::of(&noiseless, &rois, plan.contrast, hot_spot_level),
        false_hot_spot_level: hot_spot_level,
        levels,
    };
    Ok((results, slices))
}
