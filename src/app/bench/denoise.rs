//! `petal bench denoise`: the pipeline on one simulated series (Part 10 files in: decode,
//! assemble, normalise, infer, invert, write derived Part 10 files out), next to the raw
//! inference engine on the same volume in the same run, so the pipeline's own overhead is
//! visible. Storage (blob store, index) is not included: it is measured by `bench stow`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::memory::{Flatness, Memory, mib};
use crate::dicom::simulated_series::{SeriesHeader, StudyHeader, derived_uid, write_series};
use crate::inference::Volume;
use crate::jobs::denoise::denoise_series::{DerivedSeriesSettings, denoise_series};
use crate::science::model::config::DnCnnConfig;
use crate::science::model::directory::StoredModel;
use crate::science::model::pseudo_random::pseudo_random_model;
use crate::science::simulation::acquisition::ScannerModel;
use crate::science::simulation::osem::reconstruct;
use crate::science::simulation::{Grid, ReconVersion, Scan};

#[derive(Debug, Clone, clap::Args)]
pub struct DenoiseBenchArgs {
    /// Rows and columns of each slice.
    #[arg(long, default_value_t = 192)]
    pub size: usize,
    /// Slices in the series.
    #[arg(long, default_value_t = 48)]
    pub slices: usize,
    /// Timed runs of each, after one warm-up run.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Model directory; without it, pseudo-random weights at `--width-multiplier`.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Width multiplier of the pseudo-random model (1.0 is the paper's).
    #[arg(long, default_value_t = 1.0)]
    pub width_multiplier: f64,
    #[command(flatten)]
    pub engine: super::EngineArgs,
    /// After the timed runs, denoise the series this many more times and follow the RSS.
    #[arg(long)]
    pub memory_series: Option<usize>,
}

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

/// A simulated full-count series, as a scanner would send it.
pub(crate) struct SimulatedSeries {
    pub series_uid: String,
    /// Its Part 10 files, in slice order.
    pub instances: Vec<Vec<u8>>,
}

/// One simulated full-count series (one patient, reconstructed as v1) as Part 10 files.
pub(crate) fn simulated_series(size: usize, slices: usize) -> anyhow::Result<SimulatedSeries> {
    let scan = Scan::acquire(1, Grid::new(size, slices), ScannerModel::default(), 120.0);
    let image = reconstruct(&scan.system, &scan.counts, &ReconVersion::V1.settings(), &|| {});
    let folder = tempfile_dir()?;
    let study = StudyHeader {
        patient: scan.phantom.patient.clone(),
        patient_id: "BENCH-1".into(),
        patient_name: "Bench^Series".into(),
        study_uid: derived_uid(&["bench", "study"]),
        frame_of_reference_uid: derived_uid(&["bench", "frame"]),
        uid_seed: "bench".into(),
        seconds_per_bed: 120.0,
    };
    let series = SeriesHeader {
        role: "full-count".into(),
        series_number: 2,
        description: "PET WB FDG v1 full-count".into(),
        reconstruction: ReconVersion::V1.settings().describe(),
        fraction: 1.0,
    };
    let paths = write_series(&study, &series, &image, &folder.0)?;
    let instances = paths
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect::<anyhow::Result<_>>()?;
    Ok(SimulatedSeries { series_uid: derived_uid(&[&study.uid_seed, &series.role]), instances })
}

/// A temporary folder removed when dropped.
struct TempFolder(PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> anyhow::Result<TempFolder> {
    let path = std::env::temp_dir().join(format!("petal-bench-denoise-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&path).context("creating the bench folder")?;
    Ok(TempFolder(path))
}

pub async fn run(args: &DenoiseBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.size >= 16 && args.slices >= 3 && args.repeats > 0, "size ≥ 16, slices ≥ 3, repeats > 0");
    let threads = args.engine.threads();
    let model = Arc::new(match &args.model {
        Some(dir) => StoredModel::load(dir).with_context(|| format!("loading {}", dir.display()))?,
        None => pseudo_random_model(DnCnnConfig::scaled(args.width_multiplier), 7)?,
    });
    crate::report!(
        "petal bench denoise --size {} --slices {} --repeats {} --threads {threads} --batch {}{}{}",
        args.size,
        args.slices,
        args.repeats,
        args.engine.batch,
        match &args.model {
            Some(dir) => format!(" --model {}", dir.display()),
            None => format!(" --width-multiplier {}", args.width_multiplier),
        },
        args.memory_series.map_or_else(String::new, |n| format!(" --memory-series {n}"))
    );
    crate::report!("date: {}; machine: {}", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"), super::machine());
    let flops_per_slice = (args.size * args.size) as f64 * model.config.flops_per_pixel();
    crate::report!(
        "model: DnCNN widths {:?}, {:.2} MFLOP per pixel, {:.2} GFLOP per output slice",
        model.config.widths(),
        model.config.flops_per_pixel() / 1e6,
        flops_per_slice / 1e9
    );

    let (size, slices) = (args.size, args.slices);
    let clock = Instant::now();
    let sources =
        tokio::task::spawn_blocking(move || simulated_series(size, slices)).await.context("simulating")??.instances;
    crate::report!("simulated the series in {:.1} s (not counted)", clock.elapsed().as_secs_f64());
    // From here the process holds what a worker holds for one series: the engine, the model,
    // the received instances, the volume and the derived instances.
    Memory::reset_own_peak()?;
    let engine = super::start_engine(&args.engine.ort_dylib_path, threads, args.engine.batch).await?;
    crate::report!("engine: {}", engine.description());
    let derived = DerivedSeriesSettings {
        uid_root: crate::dicom::Uid::parse("2.25").context("UID root")?,
        label: "petal denoised (research use):".into(),
        series_number_offset: 1000,
        model_version: None,
        device_uid: crate::storage::models::device_uid(&model.sha256, None, None),
        uid_seed: None,
        strength: crate::domain::DenoiseStrength::STANDARD,
    };

    // The pipeline: Part 10 in, Part 10 out.
    let warm = denoise_series(&engine, model.clone(), &sources, &derived).await.context("warm-up run")?;
    let normalisation = warm.normalisation;
    drop(warm);
    let mut pipeline = Vec::new();
    for _ in 0..args.repeats {
        let started = Instant::now();
        denoise_series(&engine, model.clone(), &sources, &derived).await.context("denoising the series")?;
        pipeline.push(started.elapsed().as_secs_f64());
    }
    let pipeline_peak = Memory::of_process("self")?.peak_kib;
    // The raw engine on the same normalised volume.
    let mut data = Vec::with_capacity(size * size * slices);
    for bytes in &sources {
        let slice = crate::dicom::volume::Slice::from_part10(bytes)?;
        data.push(slice);
    }
    let volume = crate::dicom::volume::assemble(data)?;
    let values: Vec<f32> =
        volume.slices.iter().flat_map(|s| s.values.iter().map(|v| normalisation.forward(*v))).collect();
    let volume = Volume::new(slices, size, size, values)?;
    let mut raw = Vec::new();
    for _ in 0..args.repeats {
        let started = Instant::now();
        engine.denoise_volume(model.clone(), volume.clone()).await.context("raw inference")?;
        raw.push(started.elapsed().as_secs_f64());
    }
    drop(volume);
    let (pipeline, raw) = (median(pipeline), median(raw));
    let gflops = |seconds: f64| slices as f64 * flops_per_slice / seconds / 1e9;
    crate::report!("| measure | seconds per series (median) | output slices/s | GFLOP/s |");
    crate::report!("|---|---|---|---|");
    crate::report!(
        "| pipeline (decode, assemble, SUV, infer, invert, write DICOM) | {pipeline:.3} | {:.2} | {:.1} |",
        slices as f64 / pipeline,
        gflops(pipeline)
    );
    crate::report!(
        "| raw inference engine, same volume | {raw:.3} | {:.2} | {:.1} |",
        slices as f64 / raw,
        gflops(raw)
    );
    crate::report!("pipeline overhead: {:.1} % of the pipeline's time", (pipeline - raw) / pipeline * 100.0);
    crate::report!(
        "peak RSS while denoising (engine, model, one series in and out, as a worker holds them): {:.0} MiB",
        mib(pipeline_peak)
    );
    if let Some(gemm) = super::inference::machine_gemm_rate(&args.engine.python, threads).await? {
        crate::report!("pipeline / GEMM: {:.0}% of the GEMM rate", 100.0 * gflops(pipeline) / gemm);
    }
    if let Some(series) = args.memory_series {
        memory_over_series(&engine, &model, &sources, &derived, series).await?;
    }
    Ok(())
}

/// Denoises the series `series` more times, reading this process's RSS after each: whether
/// memory stays flat from one series to the next, as a worker's must.
async fn memory_over_series(
    engine: &crate::inference::InferenceEngine,
    model: &Arc<StoredModel>,
    sources: &[Vec<u8>],
    derived: &DerivedSeriesSettings,
    series: usize,
) -> anyhow::Result<()> {
    crate::report!("\n| series denoised | RSS MiB | peak RSS MiB |\n|---|---|---|");
    let mut samples = Vec::with_capacity(series);
    for done in 1..=series {
        denoise_series(engine, model.clone(), sources, derived).await.context("denoising the series")?;
        let now = Memory::of_process("self")?;
        samples.push(now.rss_kib);
        crate::report!("| {done} | {:.0} | {:.0} |", mib(now.rss_kib), mib(now.peak_kib));
    }
    let flatness = Flatness::of(&samples);
    crate::report!(
        "over {series} series the second half raised the highest RSS by {:.1} MiB ({})",
        flatness.growth_mib,
        flatness.verdict()
    );
    Ok(())
}
