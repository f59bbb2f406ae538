//! `petal bench inference`: whole-volume denoising throughput of petal's inference engine
//! (the engine thread, its session cache and the windowing a job uses), next to the same
//! folded graph and the same windows through Python `onnxruntime`, and next to the machine's
//! single-precision GEMM rate (numpy float32 matmul), the roofline CPU inference is measured
//! against (docs/interoperability.md §7).
//!
//! The Python side is `scripts/bench/ort_reference.py`, built into the binary and run with
//! `.venv`'s Python (`scripts/setup` installs numpy and onnxruntime there); without it the
//! command says so and prints petal's own figures only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::inference::Volume;
use crate::science::model::config::DnCnnConfig;
use crate::science::model::onnx::export_folded;
use crate::science::model::pseudo_random::{SplitMix, pseudo_random_model};

/// The Python reference, written next to its inputs at run time.
const REFERENCE_SCRIPT: &str = include_str!("../../../scripts/bench/ort_reference.py");
/// Outputs agree when max |Δ| ≤ this × max |y|.
const AGREEMENT: f64 = 1e-4;
/// Side of the GEMM used as the roofline.
const GEMM_SIZE: usize = 2048;
/// Timed GEMM repeats (the best is kept).
const GEMM_REPEATS: usize = 5;

#[derive(Debug, Clone, clap::Args)]
pub struct InferenceBenchArgs {
    /// Width multiplier of the network (1.0 is the paper's).
    #[arg(long, default_value_t = 1.0)]
    pub width_multiplier: f64,
    /// Rows and columns of each slice.
    #[arg(long, default_value_t = 192)]
    pub size: usize,
    /// Slices in the volume (one output slice per 3-slice window).
    #[arg(long, default_value_t = 16)]
    pub slices: usize,
    /// Timed passes over the volume, after one warm-up pass.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[command(flatten)]
    pub engine: super::EngineArgs,
}

/// Seconds per pass over the volume.
struct Timing {
    median: f64,
    min: f64,
}

impl Timing {
    fn of(mut seconds: Vec<f64>) -> anyhow::Result<Self> {
        anyhow::ensure!(!seconds.is_empty(), "no timed passes");
        seconds.sort_by(f64::total_cmp);
        Ok(Self { median: seconds[seconds.len() / 2], min: seconds[0] })
    }
}

/// Removes the bench's temporary folder however the bench ends.
struct TempFolder(PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn run(args: &InferenceBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.size >= 8 && args.slices > 0 && args.repeats > 0 && args.engine.batch > 0,
        "size (>= 8), slices, repeats and batch must be positive"
    );
    let threads = args.engine.threads();
    let config = DnCnnConfig::scaled(args.width_multiplier);
    config.validate()?;
    crate::report!(
        "petal bench inference --width-multiplier {} --size {} --slices {} --repeats {} --threads {} --batch {}",
        args.width_multiplier,
        args.size,
        args.slices,
        args.repeats,
        threads,
        args.engine.batch
    );
    crate::report!("date: {}; machine: {}", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"), super::machine());
    let flops_per_slice = (args.size * args.size) as f64 * config.flops_per_pixel();
    crate::report!(
        "model: DnCNN widths {:?} (pseudo-random weights), {:.2} MFLOP per pixel, {:.2} GFLOP per {}×{} slice",
        config.widths(),
        config.flops_per_pixel() / 1e6,
        flops_per_slice / 1e9,
        args.size,
        args.size
    );
    let rate = |timing: &Timing| {
        let slices_per_second = args.slices as f64 / timing.median;
        (slices_per_second, slices_per_second * flops_per_slice / 1e9)
    };

    let model = Arc::new(pseudo_random_model(config.clone(), 7)?);
    let volume = pet_like_volume(args.slices, args.size, 11)?;

    // 1. petal's engine.
    let engine = super::start_engine(&args.engine.ort_dylib_path, threads, args.engine.batch).await?;
    crate::report!("petal engine: {}", engine.description());
    let provider = engine.prepare(model.clone()).await.context("building the session")?;
    crate::report!("execution provider: {}", provider.as_str());
    engine.denoise_volume(model.clone(), volume.clone()).await.context("warm-up pass")?;
    let mut seconds = Vec::with_capacity(args.repeats);
    let mut petal_output = None;
    for _ in 0..args.repeats {
        let started = Instant::now();
        let output = engine.denoise_volume(model.clone(), volume.clone()).await.context("denoising the volume")?;
        seconds.push(started.elapsed().as_secs_f64());
        petal_output = Some(output);
    }
    drop(engine); // stops the engine thread and its ONNX Runtime threads before Python runs
    let petal = Timing::of(seconds)?;
    let (petal_slices, petal_gflops) = rate(&petal);
    crate::report!(
        "petal: {petal_slices:.2} slices/s, {petal_gflops:.1} GFLOP/s (median {:.3} s per volume of {} slices, min {:.3} s)",
        petal.median,
        args.slices,
        petal.min
    );
    let petal_output = petal_output.context("no timed pass ran")?;

    // 2. and 3. need the Python environment.
    let Some(interpreter) = find_program(&args.engine.python) else {
        crate::report!(
            "python onnxruntime: skipped: {} not found; run scripts/setup to create .venv (numpy, onnxruntime) \
             for the Python comparison and the GEMM roofline",
            args.engine.python.display()
        );
        return Ok(());
    };
    let folder = TempFolder(std::env::temp_dir().join(format!("petal-bench-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&folder.0).context("creating the bench folder")?;
    let script = folder.0.join("ort_reference.py");
    std::fs::write(&script, REFERENCE_SCRIPT).context("writing the Python reference script")?;
    let graph = folder.0.join("model.onnx");
    std::fs::write(&graph, export_folded(&model.config, &model.weights)?).context("writing the ONNX graph")?;
    let input = folder.0.join("input.f32");
    std::fs::write(&input, f32_bytes(volume.data())).context("writing the input volume")?;
    let output = folder.0.join("output.f32");

    // 2. The same graph and windows through Python onnxruntime.
    let mut command = tokio::process::Command::new(&interpreter);
    command.arg(&script).arg("ort").arg(&graph).arg(&input).arg(&output);
    for (flag, value) in [
        ("--depth", args.slices),
        ("--height", args.size),
        ("--width", args.size),
        ("--batch", args.engine.batch),
        ("--threads", threads),
        ("--repeats", args.repeats),
    ] {
        command.arg(flag).arg(value.to_string());
    }
    command.env("OPENBLAS_NUM_THREADS", "1");
    let reference = run_json(command, "the Python onnxruntime reference").await?;
    let python = Timing::of(
        reference["seconds"]
            .as_array()
            .context("the Python reference gave no timings")?
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect(),
    )?;
    let (python_slices, python_gflops) = rate(&python);
    crate::report!(
        "python onnxruntime {}: {python_slices:.2} slices/s, {python_gflops:.1} GFLOP/s (median {:.3} s per volume, \
         min {:.3} s; same graph, windows and threads)",
        reference["onnxruntime"].as_str().unwrap_or("(unknown version)"),
        python.median,
        python.min
    );
    crate::report!("petal / python: {:.2}× (slices/s)", petal_slices / python_slices);
    let python_output = read_f32(&output)?;
    let agreement = compare(petal_output.data(), &python_output)?;
    crate::report!(
        "agreement: max |Δ| = {:.2e}, max |y| = {:.3}, ratio {:.2e} (bound {AGREEMENT:.0e}): {}",
        agreement.max_difference,
        agreement.max_magnitude,
        agreement.ratio(),
        if agreement.holds() { "agree" } else { "DISAGREE" }
    );

    // 3. The machine's GEMM rate.
    let gemm_gflops = gemm_rate(&interpreter, &script, threads).await?;
    crate::report!("petal engine / GEMM: {:.0}% of the GEMM rate", 100.0 * petal_gflops / gemm_gflops);
    anyhow::ensure!(
        agreement.holds(),
        "petal's and Python onnxruntime's outputs differ by more than {AGREEMENT:.0e} × max |y|"
    );
    Ok(())
}

/// The machine's single-precision GEMM rate (GFLOP/s) on `threads` threads, with OpenBLAS's
/// own kernel choice, measured by the reference script (at `script`) under `interpreter`;
/// prints what it measured.
async fn gemm_rate(interpreter: &Path, script: &Path, threads: usize) -> anyhow::Result<f64> {
    let mut command = tokio::process::Command::new(interpreter);
    command
        .arg(script)
        .args(["gemm", "--size", &GEMM_SIZE.to_string(), "--repeats", &GEMM_REPEATS.to_string()])
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .env("OPENBLAS_NUM_THREADS", threads.to_string());
    let gemm = run_json(command, "the numpy GEMM").await?;
    let gemm_gflops = gemm["gflops"].as_f64().context("the GEMM gave no rate")?;
    crate::report!(
        "GEMM: numpy {} float32 matmul {GEMM_SIZE}³, best of {GEMM_REPEATS}: {gemm_gflops:.1} GFLOP/s \
         ({}, kernel {}, {} threads)",
        gemm["numpy"].as_str().unwrap_or("?"),
        gemm["blas_config"]
            .as_str()
            .map_or_else(|| "unknown BLAS".to_owned(), |c| c.split_whitespace().take(2).collect::<Vec<_>>().join(" ")),
        gemm["blas_core"].as_str().unwrap_or("unknown"),
        gemm["blas_threads"].as_i64().map_or_else(|| "?".to_owned(), |n| n.to_string())
    );
    Ok(gemm_gflops)
}

/// The machine's GEMM rate (GFLOP/s) on `threads` threads through `python` (.venv's, with
/// numpy), or `None` (said in the report) when that Python is missing.
pub(crate) async fn machine_gemm_rate(python: &Path, threads: usize) -> anyhow::Result<Option<f64>> {
    let Some(interpreter) = find_program(python) else {
        crate::report!("GEMM: skipped: {} not found; run scripts/setup to create .venv (numpy)", python.display());
        return Ok(None);
    };
    let folder = TempFolder(std::env::temp_dir().join(format!("petal-bench-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&folder.0).context("creating the bench folder")?;
    let script = folder.0.join("ort_reference.py");
    std::fs::write(&script, REFERENCE_SCRIPT).context("writing the Python reference script")?;
    gemm_rate(&interpreter, &script, threads).await.map(Some)
}

/// Runs `command` and parses the JSON object it prints last on stdout.
async fn run_json(mut command: tokio::process::Command, what: &str) -> anyhow::Result<serde_json::Value> {
    let output = command.kill_on_drop(true).output().await.with_context(|| format!("running {what}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow::bail!("{what} failed ({}): {}", output.status, tail.join("\n"));
    }
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("{what} printed no JSON: {stdout}"))
}

struct Agreement {
    max_difference: f64,
    max_magnitude: f64,
}

impl Agreement {
    fn ratio(&self) -> f64 {
        if self.max_magnitude > 0.0 { self.max_difference / self.max_magnitude } else { self.max_difference }
    }

    fn holds(&self) -> bool {
        self.max_difference <= AGREEMENT * self.max_magnitude
    }
}

/// `program` itself when it names a file, else the first match on `PATH` for a bare name
/// (`python3` on a machine without the project's `.venv`).
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.is_file() {
        return Some(program.to_owned());
    }
    if program.components().count() != 1 {
        return None;
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|path| path.is_file())
}

fn compare(petal: &[f32], python: &[f32]) -> anyhow::Result<Agreement> {
    anyhow::ensure!(
        petal.len() == python.len(),
        "the Python reference returned {} values, petal {}",
        python.len(),
        petal.len()
    );
    let mut agreement = Agreement { max_difference: 0.0, max_magnitude: 0.0 };
    for (a, b) in petal.iter().zip(python) {
        let difference = f64::from((a - b).abs());
        // NaN never compares greater, so it must be caught explicitly.
        agreement.max_difference =
            if difference.is_nan() { f64::INFINITY } else { agreement.max_difference.max(difference) };
        agreement.max_magnitude = agreement.max_magnitude.max(f64::from(a.abs()));
    }
    Ok(agreement)
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_f32(path: &Path) -> anyhow::Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(bytes.len().is_multiple_of(4), "{} is not a float32 file", path.display());
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// A PET-like volume in SUV units: an elliptical body (uptake ≈ 1) with a liver-like region
/// (≈ 2.5) and a few hot lesions (≈ 8) spread over z, near-zero air, and multiplicative
/// noise of ≈ 20%.
pub fn pet_like_volume(depth: usize, size: usize, seed: u64) -> anyhow::Result<Volume> {
    let mut rng = SplitMix::new(seed);
    let half = size as f32 / 2.0;
    let lesions = [(-0.3f32, 0.2f32, 0.25f32), (0.35, -0.15, 0.6), (0.1, 0.3, 0.85)];
    let mut data = Vec::with_capacity(depth * size * size);
    for z in 0..depth {
        let w = (z as f32 + 0.5) / depth as f32;
        for row in 0..size {
            let v = (row as f32 + 0.5 - half) / half;
            for column in 0..size {
                let u = (column as f32 + 0.5 - half) / half;
                let mut activity = if (u / 0.85).powi(2) + (v / 0.6).powi(2) <= 1.0 { 1.0 } else { 0.02 };
                if ((u - 0.3) / 0.35).powi(2) + ((v + 0.15) / 0.25).powi(2) + ((w - 0.5) / 0.4).powi(2) <= 1.0 {
                    activity = 2.5;
                }
                for (lu, lv, lw) in lesions {
                    if (u - lu).powi(2) + (v - lv).powi(2) + (w - lw).powi(2) * 0.25 <= 0.0064 {
                        activity = 8.0;
                    }
                }
                data.push((activity * (1.0 + 0.2 * rng.normal())).max(0.0));
            }
        }
    }
    Volume::new(depth, size, size, data).context("the generated volume")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_inputs_are_deterministic_and_fit() {
        let config = DnCnnConfig::scaled(0.1);
        let a = pseudo_random_model(config.clone(), 3).expect("model");
        let b = pseudo_random_model(config, 3).expect("model");
        assert_eq!(a.sha256, b.sha256);
        let volume = pet_like_volume(4, 16, 1).expect("volume");
        assert_eq!(volume.shape(), [4, 16, 16]);
        assert_eq!(volume, pet_like_volume(4, 16, 1).expect("volume"));
        assert!(volume.data().iter().all(|v| v.is_finite() && *v >= 0.0));
        assert!(volume.data().iter().any(|v| *v > 4.0), "hot lesions are present");
    }

    #[test]
    fn agreement_is_relative_to_the_largest_output() {
        let agreement = compare(&[10.0, -2.0], &[10.0005, -2.0]).expect("same length");
        assert!(agreement.holds());
        assert!(!compare(&[10.0, -2.0], &[10.01, -2.0]).expect("same length").holds());
        assert!(!compare(&[1.0], &[f32::NAN]).expect("same length").holds());
        assert!(compare(&[1.0], &[1.0, 2.0]).is_err());
    }
}
