//! The flags of the offline commands: `denoise`, `simulate`, `train-base`, `demo`, `eval`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::serve::{DerivedSeriesArgs, InferenceArgs};
use super::values::recon_version_parser;

#[derive(Debug, Clone, Subcommand)]
pub enum EvalCommand {
    /// Reproduce the TGD paper's Table 1 (v1-net, v2-net, FT-net, TGD-net, TGD_N2N-net; lesion
    /// bias and liver CoV) and its KSE sweep on simulated data; resumable.
    Paper(EvalPaperArgs),
    /// Judge online learning against the truth: rounds on simulated patients whose noiseless
    /// reconstruction is known (domain shift and same domain), an oracle round, a follow-up
    /// scan and a second round; writes rounds.md and rounds.json; resumable.
    Rounds(EvalRoundsArgs),
    /// The NEMA IEC body phantom through OSEM and through petal: contrast recovery of each
    /// sphere, background variability and noise, lung residual, and OSEM filtered to
    /// petal's noise; writes nema.md and nema.json.
    Nema(EvalNemaArgs),
}

#[derive(Debug, Clone, Args)]
pub struct EvalNemaArgs {
    /// A smoke run of about a minute (5 mm pixels, 3 realizations, 2 count levels).
    #[arg(long)]
    pub quick: bool,
    /// Independent realizations per count level.
    #[arg(long, default_value_t = 10)]
    pub realizations: usize,
    /// Count levels in percent of the full-count scan, comma-separated (default
    /// 100,50,25,10; with `--quick`, 100,25).
    #[arg(long, value_delimiter = ',')]
    pub counts: Option<Vec<f64>>,
    /// Sphere-to-background activity (EARL: 4, 8 or 10).
    #[arg(long, default_value_t = 4.0)]
    pub contrast: f64,
    /// The model to judge.
    #[arg(long, env = "PETAL_BASE_MODEL", default_value = "models/base")]
    pub model: PathBuf,
    /// Denoising strength, as `petal serve --strength` takes it: `standard`,
    /// `lesion-preserving`, or a share of the network's change in (0, 1].
    #[arg(long, env = "PETAL_DENOISE_STRENGTH", default_value = "standard")]
    pub strength: crate::domain::DenoiseStrength,
    /// Folder for nema.md and nema.json (docs/results for the default scale, else
    /// eval-nema-<scale>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What `petal simulate` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PhantomChoice {
    /// A patient's torso (see `--section`).
    Body,
    /// The NEMA NU 2 / IEC body phantom: six spheres and a lung insert.
    Nema,
}

/// Which part of the torso `petal simulate` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SectionChoice {
    /// The whole torso stretched onto the slices (the original layout).
    Fit,
    Thorax,
    Liver,
    Abdomen,
    Pelvis,
    /// Centred mid-torso at true length.
    Whole,
}

impl SectionChoice {
    /// The torso this choice draws.
    pub fn anatomy(self) -> crate::science::simulation::anatomy::Anatomy {
        use crate::science::simulation::anatomy::{Anatomy, Section};
        let section = match self {
            SectionChoice::Fit => return Anatomy::FittedTorso,
            SectionChoice::Thorax => Section::Thorax,
            SectionChoice::Liver => Section::Liver,
            SectionChoice::Abdomen => Section::Abdomen,
            SectionChoice::Pelvis => Section::Pelvis,
            SectionChoice::Whole => Section::Whole,
        };
        Anatomy::Torso { section }
    }
}

/// The simulator's voxel size and resolution, shared by `petal simulate` and `petal
/// train-base`.
#[derive(Debug, Clone, Args)]
pub struct GeometryArgs {
    /// In-plane pixel size (mm); default 600 / size. Clinical scanners: 2–4 mm.
    #[arg(long)]
    pub pixel_mm: Option<f64>,
    /// Slice spacing (mm); default the pixel size. Clinical scanners: 2–4 mm.
    #[arg(long)]
    pub slice_mm: Option<f64>,
    /// Scanner resolution (mm FWHM), in-plane and axial; default 6 mm in-plane and none
    /// along z (the original model). Clinical scanners: 4–8 mm.
    #[arg(long)]
    pub fwhm_mm: Option<f64>,
}

impl GeometryArgs {
    /// Refuses sizes no scanner has, naming the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (flag, value) in [("--pixel-mm", self.pixel_mm), ("--slice-mm", self.slice_mm)] {
            if let Some(mm) = value {
                anyhow::ensure!((0.5..=20.0).contains(&mm), "{flag} must be between 0.5 and 20 mm, not {mm}");
            }
        }
        if let Some(fwhm) = self.fwhm_mm {
            anyhow::ensure!((0.0..=20.0).contains(&fwhm), "--fwhm-mm must be between 0 and 20 mm, not {fwhm}");
        }
        Ok(())
    }

    /// The grid of `size` pixels and `slices` slices: 600 / size mm pixels and slices as
    /// thick unless told otherwise.
    pub fn grid(&self, size: usize, slices: usize) -> crate::science::image::Grid {
        use crate::science::image::Grid;
        let pixel_mm = self.pixel_mm.unwrap_or(Grid::new(size, slices).pixel_mm);
        Grid::with_spacing(size, slices, pixel_mm, self.slice_mm.unwrap_or(pixel_mm))
    }

    /// The scanner these flags ask for.
    pub fn scanner(&self) -> crate::science::simulation::acquisition::ScannerModel {
        use crate::science::simulation::acquisition::ScannerModel;
        self.fwhm_mm.map_or_else(ScannerModel::default, ScannerModel::with_resolution)
    }
}

impl SimulateArgs {
    /// The object these flags ask for.
    pub fn anatomy(&self) -> crate::science::simulation::anatomy::Anatomy {
        match self.phantom {
            PhantomChoice::Nema => crate::science::simulation::anatomy::Anatomy::NemaIec { contrast: self.contrast },
            PhantomChoice::Body => self.section.anatomy(),
        }
    }

    /// The voxel grid these flags ask for.
    pub fn grid(&self) -> crate::science::image::Grid {
        self.geometry.grid(self.size, self.slices)
    }
}

/// A case of `petal eval rounds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoundCase {
    DomainShift,
    SameDomain,
}

#[derive(Debug, Clone, Args)]
pub struct EvalRoundsArgs {
    /// A smoke run of a few minutes at a tiny scale (its numbers mean nothing).
    #[arg(long)]
    pub quick: bool,
    /// Patient seeds, `A..B` (B excluded); each gives a domain-shift and a same-domain case.
    /// The pinned acceptance seeds by default (`sweep` names the sweep's seeds).
    #[arg(long, value_parser = super::values::seed_range_parser)]
    pub seeds: Option<std::ops::Range<u64>>,
    /// Round settings to change from the defaults, as JSON (the API's RoundSettings).
    #[arg(long, default_value = "{}", value_parser = super::values::parse_round_defaults)]
    pub settings: crate::science::training::n2n_round::RoundSettings,
    /// Pixels across each simulated slice instead of the recorded scale's 96: judges rounds
    /// at another voxel size (the body fills the field of view, so more pixels are smaller
    /// voxels). Results go to WORK/results unless --out says otherwise.
    #[arg(long, value_parser = clap::value_parser!(u16).range(32..=512), conflicts_with = "quick")]
    pub size: Option<u16>,
    /// Slices of each simulated patient instead of the recorded scale's 32.
    #[arg(long, value_parser = clap::value_parser!(u16).range(8..=256), conflicts_with = "quick")]
    pub slices: Option<u16>,
    /// Only the first round of each patient (no oracle, follow-up scan or second round):
    /// what a sweep of the settings needs.
    #[arg(long)]
    pub first_rounds_only: bool,
    /// Only one case of each patient (both by default).
    #[arg(long, value_enum)]
    pub case: Option<RoundCase>,
    /// The parent of every first round (the shipped base model, trained on v1).
    #[arg(long, env = "PETAL_BASE_MODEL", default_value = "models/base")]
    pub model: PathBuf,
    /// Folder of the cached cases (reused when run again with the same model, settings and scale).
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Where rounds.md and rounds.json go: docs/results, or WORK/results with --quick.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct EvalPaperArgs {
    /// A smoke run of a few minutes at a tiny scale (its numbers mean nothing).
    #[arg(long)]
    pub quick: bool,
    /// v1-net: the shipped base model (trained on v1); v2-net is trained with its recipe.
    #[arg(long, env = "PETAL_BASE_MODEL", default_value = "models/base")]
    pub model: PathBuf,
    /// Folder of the trained networks (reused when run again); `eval-paper-<scale>` by default.
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Where the report, results.json and figures go: docs/results, or WORK/results with --quick.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The running petal.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// File holding an admin token (the one `petal serve` writes on first start).
    #[arg(long, default_value = "petal-data/admin-token")]
    pub token_file: PathBuf,
    /// Seed of the simulated patient.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Pixels across each slice.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Number of slices.
    #[arg(long, default_value_t = 32)]
    pub slices: usize,
    /// The OSEM version of the simulated scanner. The shipped base model was trained on v1;
    /// v2, a reconstruction it never saw, is the paper's case for learning each patient.
    #[arg(long, default_value = "v2", value_parser = recon_version_parser())]
    pub recon: crate::science::simulation::ReconVersion,
    /// How long to wait for the derived series and then for the learning round it starts.
    #[arg(long, default_value_t = 600)]
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Args)]
pub struct TrainBaseArgs {
    /// Model directory to write (weights, config, ONNX, report, loss curve); also holds the checkpoints.
    pub output: PathBuf,
    /// Width multiplier of the network (1.0 is the paper's; 0.25 is the shipped model's).
    #[arg(long, default_value_t = 0.25)]
    pub width_multiplier: f64,
    /// Training steps.
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Patches per step.
    #[arg(long, default_value_t = crate::science::training::DEFAULT_BATCH)]
    pub batch: usize,
    /// Side of the square patches.
    #[arg(long, default_value_t = crate::science::training::DEFAULT_PATCH)]
    pub patch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub learning_rate: f64,
    /// Share of the steps, at the end, trained at a lower learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr_decay_share: f64,
    /// The lower learning rate, as a multiple of `--learning-rate`.
    #[arg(long, default_value_t = 0.1)]
    pub lr_decay_factor: f64,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Share of the patches drawn around a lesion of the simulated patients (0 draws every
    /// patch uniformly, as the paper did and as the shipped model was trained); docs/models.md
    /// has what 0.5 changed.
    #[arg(long, default_value_t = 0.0)]
    pub lesion_share: f64,
    /// Weight of the squared error at lesion voxels of the simulated patients (1: plain MSE,
    /// every voxel alike). Larger values make flattening a small hot lesion cost more than
    /// the noise it removes; docs/models.md has what it changed.
    #[arg(long, default_value_t = 1.0)]
    pub lesion_weight: f64,
    /// Coefficient of a group lasso on each input channel of conv2 and up: it drives whole
    /// channels towards zero, so that KSE finds kernels that can be dropped or retrained at
    /// little cost, and TGD rounds have room to learn (0: none; docs/learning.md).
    #[arg(long, default_value_t = 0.0)]
    pub channel_sparsity: f64,
    /// Share of each layer's channels held in reserve for online learning: the lowest-KSE
    /// channels of the `--init-from` model, which the run teaches the network to do
    /// without, so a TGD round can retrain them at no cost to what the model knows
    /// (0: none; docs/learning.md, "Room for TGD").
    #[arg(long, default_value_t = 0.0)]
    pub reserve_share: f64,
    /// What a reserved channel emits at the end, as a fraction of its starting size.
    #[arg(long, default_value_t = 0.01)]
    pub reserve_activation_floor: f64,
    /// Norm of the kernels reading a reserved channel at the end, as a fraction of their
    /// starting norm (low enough for KSE to flag the channel, high enough for a round to
    /// use it).
    #[arg(long, default_value_t = 0.3)]
    pub reserve_outgoing_scale: f64,
    /// Batches whose BatchNorm statistics, averaged, replace training's running statistics
    /// at the end (0 keeps training's exponential average of the last batches, as the
    /// shipped model does).
    #[arg(long, default_value_t = 0)]
    pub batch_norm_batches: usize,
    /// Independent realizations per count level of the held-out patient in the report.
    #[arg(long, default_value_t = 4)]
    pub held_out_realizations: usize,
    /// Seed of the weights, the patch draws and the first simulated patient.
    #[arg(long, default_value_t = 1000)]
    pub seed: u64,
    /// Simulated training patients (one more is simulated and held out).
    #[arg(long, default_value_t = 6)]
    pub patients: u64,
    /// Pixels across each simulated slice.
    #[arg(long, default_value_t = 96)]
    pub size: usize,
    /// Slices per simulated patient.
    #[arg(long, default_value_t = 32)]
    pub slices: usize,
    /// OSEM version of the training data (the paper's v1-net: v1).
    #[arg(long, default_value = "v1", value_parser = recon_version_parser())]
    pub recon: crate::science::simulation::ReconVersion,
    /// Full-count scan time of the simulated patients (s per bed).
    #[arg(long, default_value_t = 120.0)]
    pub seconds_per_bed: f64,
    #[command(flatten)]
    pub geometry: GeometryArgs,
    /// What the patients' volumes show, taken in turn by seed: `fit` (the whole torso
    /// stretched onto the slices, the original layout) or sections of the torso at true
    /// length (thorax, liver, abdomen, pelvis, whole), e.g. `thorax,liver,abdomen,pelvis`.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [SectionChoice::Fit])]
    pub sections: Vec<SectionChoice>,
    /// Shares of the full counts the noisy inputs are reconstructed from.
    #[arg(long, value_delimiter = ',', default_values_t = [0.1, 0.25, 0.5, 1.0])]
    pub count_levels: Vec<f64>,
    /// Train on real pairs instead: DIR/<pair>/input and DIR/<pair>/target DICOM series (the last pair is held out).
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Start over even if a checkpoint of the same run exists.
    #[arg(long)]
    pub fresh: bool,
    /// Start from this model directory's weights instead of fresh ones: the run goes on
    /// training that model (e.g. on lesion patches). Its widths must be those of
    /// `--width-multiplier`, and it must not be the output directory.
    #[arg(long)]
    pub init_from: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Folder to write the studies into (one sub-folder `sim-<seed>` per study).
    pub output: PathBuf,
    /// Number of patients (studies), with seeds `--seed`, `--seed + 1`, …
    #[arg(long, default_value_t = 1)]
    pub patients: u64,
    /// Seed of the first patient: the same seed gives the same phantom, counts and files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pixels across each slice, e.g. 96, 128 or 192 (over a 600 mm field of view unless
    /// `--pixel-mm` is given).
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Number of axial slices. With `--section fit` the torso spans them whatever their
    /// number; otherwise they show `slices × slice-mm` of the body.
    #[arg(long, default_value_t = 48)]
    pub slices: usize,
    #[command(flatten)]
    pub geometry: GeometryArgs,
    /// Gaussian post-filter (mm FWHM, 0 for none) in place of the reconstruction version's.
    #[arg(long)]
    pub post_filter_mm: Option<f64>,
    /// What to draw: a patient's torso, or the NEMA IEC body phantom.
    #[arg(long, value_enum, default_value_t = PhantomChoice::Body)]
    pub phantom: PhantomChoice,
    /// Which part of the torso the slices show at true length (thorax, liver, abdomen,
    /// pelvis, whole); `fit` stretches the whole torso onto the slices (the original layout).
    #[arg(long, value_enum, default_value_t = SectionChoice::Fit)]
    pub section: SectionChoice,
    /// Sphere-to-background activity of the NEMA phantom (EARL: 4, 8 or 10).
    #[arg(long, default_value_t = 4.0)]
    pub contrast: f64,
    /// Full-count scan time per bed position (s): sets the count level.
    #[arg(long, default_value_t = 120.0)]
    pub seconds_per_bed: f64,
    /// OSEM version: v1 (no resolution modelling, 8 mm filter) or v2 (PSF, no filter).
    #[arg(long, default_value = "v1", value_parser = recon_version_parser())]
    pub recon: crate::science::simulation::ReconVersion,
    /// Number of i.i.d. low-count realizations (disjoint parts of the counts).
    #[arg(long, default_value_t = 10)]
    pub realizations: usize,
    /// Share of the full counts in each low-count realization.
    #[arg(long, default_value_t = 0.1)]
    pub low_count_fraction: f64,
}

#[derive(Debug, Clone, Args)]
pub struct DenoiseArgs {
    /// Folder of DICOM files (searched recursively).
    pub input: PathBuf,
    /// Folder for the derived series, one sub-folder per series.
    pub output: PathBuf,
    /// Model directory to denoise with (default: the base model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub inference: InferenceArgs,
    #[command(flatten)]
    pub derived: DerivedSeriesArgs,
}
