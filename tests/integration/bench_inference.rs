//! `petal bench inference` on a small model: petal's engine, the Python onnxruntime
//! reference on the same graph and windows, and the agreement of their outputs.

use std::process::Command;

use crate::common::{ort_dylib_path, petal_binary};

#[test]
fn bench_inference_compares_petal_with_python_onnxruntime() {
    let output = Command::new(petal_binary())
        .args(["bench", "inference", "--width-multiplier", "0.25", "--size", "32", "--slices", "4", "--repeats", "1"])
        .args(["--threads", "1"])
        .env("ORT_DYLIB_PATH", ort_dylib_path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run petal bench inference");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let line = |prefix: &str| stdout.lines().find(|l| l.starts_with(prefix)).map(str::to_owned);
    let petal = line("petal: ").unwrap_or_else(|| panic!("no petal line in:\n{stdout}"));
    assert!(petal.contains("slices/s") && petal.contains("GFLOP/s"), "{petal}");
    let ratio = line("petal / python: ").unwrap_or_else(|| panic!("no ratio line in:\n{stdout}"));
    assert!(ratio.contains('×'), "{ratio}");
    let agreement = line("agreement: ").unwrap_or_else(|| panic!("no agreement line in:\n{stdout}"));
    assert!(agreement.ends_with(": agree"), "{agreement}");
    assert!(line("GEMM: ").is_some(), "no GEMM line in:\n{stdout}");
}

#[test]
fn bench_denoise_reports_rates_the_gemm_share_and_memory_over_several_series() {
    let output = Command::new(petal_binary())
        .args(["bench", "denoise", "--width-multiplier", "0.25", "--size", "32", "--slices", "4", "--repeats", "1"])
        .args(["--threads", "1", "--memory-series", "3"])
        .env("ORT_DYLIB_PATH", ort_dylib_path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run petal bench denoise");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    let pipeline = stdout.lines().find(|l| l.starts_with("| pipeline")).expect("a pipeline row");
    assert_eq!(pipeline.split('|').count(), 6, "seconds, slices/s and GFLOP/s: {pipeline}");
    assert!(stdout.contains("peak RSS while denoising"), "{stdout}");
    assert!(stdout.contains("pipeline / GEMM: "), "{stdout}");
    for series in ["| 1 |", "| 2 |", "| 3 |"] {
        assert!(stdout.contains(series), "a memory row after {series}: {stdout}");
    }
    assert!(
        stdout.contains("over 3 series") && (stdout.contains("(flat)") || stdout.contains("(growing)")),
        "{stdout}"
    );
}
