//! `petal bench stow` at a tiny size: petal and Orthanc each store the same series by STOW-RS
//! and by C-STORE (the bench fails unless every instance is stored), the ratios are printed, and the memory mode
//! follows petal's RSS. Figures only, never timed assertions.

use std::process::Command;

use crate::common::petal_binary;

fn bench(args: &[&str]) -> String {
    let output = Command::new(petal_binary()).args(["bench", "stow"]).args(args).output().expect("run bench stow");
    assert!(output.status.success(), "bench stow {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn petal_and_orthanc_ingest_the_same_series_and_the_ratio_is_printed() {
    let out = bench(&["--slices", "6", "--size", "32", "--rounds", "2", "--warmup", "1", "--orthanc", "--dimse"]);
    // STOW-RS: a warm-up, two rounds and the summary; C-STORE: two rounds each.
    assert_eq!(out.matches("| petal |").count(), 6, "STOW-RS and C-STORE rounds for petal: {out}");
    assert_eq!(out.matches("| Orthanc |").count(), 6, "STOW-RS and C-STORE rounds for Orthanc: {out}");
    assert_eq!(out.matches("| warm-up 1 |").count(), 2, "the warm-up is shown for both servers: {out}");
    assert!(out.contains("petal / Orthanc: "), "{out}");
    assert!(out.contains("petal / Orthanc by C-STORE: "), "{out}");
}

#[test]
fn the_memory_mode_follows_petals_rss_request_by_request_and_is_recorded() {
    let dir = tempfile::tempdir().expect("dir");
    let record = dir.path().join("benchmarks.md");
    std::fs::write(&record, "# Benchmarks\n").expect("write");
    let record_flag = record.display().to_string();
    let out = bench(&["--slices", "5", "--size", "32", "--memory", "20", "--record", &record_flag]);
    for stored in ["| 5 |", "| 10 |", "| 15 |", "| 20 |"] {
        assert!(out.contains(stored), "a row after {stored}: {out}");
    }
    assert!(out.contains("peak RSS") && (out.contains("(flat)") || out.contains("(growing)")), "{out}");
    let recorded = std::fs::read_to_string(&record).expect("read");
    assert!(recorded.starts_with("# Benchmarks\n"), "appended, not overwritten: {recorded}");
    assert!(recorded.contains("(recorded by the command)") && recorded.contains("--memory 20"), "{recorded}");
    assert!(recorded.contains("| 20 |") && recorded.contains("peak RSS"), "the figures are recorded: {recorded}");
}

#[test]
fn several_clients_post_at_once_and_their_latencies_and_ratio_are_printed() {
    let out = bench(&[
        "--slices",
        "4",
        "--size",
        "32",
        "--rounds",
        "2",
        "--warmup",
        "0",
        "--orthanc",
        "--clients",
        "3",
        "--request-instances",
        "2",
    ]);
    // Each round: 3 senders × 2 requests of 2 instances, to each server.
    assert_eq!(out.matches("| petal | 3 | 12 | 6 |").count(), 2, "two rounds of 3 clients for petal: {out}");
    assert_eq!(out.matches("| Orthanc | 3 | 12 | 6 |").count(), 2, "two rounds of 3 clients for Orthanc: {out}");
    assert!(out.contains("| server | instances/s | requests | p50 request s | p99 request s |"), "{out}");
    let summary = out.lines().find(|l| l.starts_with("| petal |") && l.split('|').count() == 8).expect("summary row");
    assert_eq!(summary.split('|').nth(3).map(str::trim), Some("12"), "12 requests counted: {summary}");
    assert!(out.contains("petal / Orthanc with 3 clients: "), "{out}");
}

#[test]
fn ingest_is_measured_alone_and_while_the_worker_denoises() {
    let out = bench(&["--slices", "4", "--size", "64", "--rounds", "1", "--warmup", "0", "--during-denoise", "64"]);
    assert!(out.contains("| 1 | idle | 4 |"), "{out}");
    assert!(out.contains("| 1 | denoising | 4 |"), "the request overlapped the job: {out}");
    assert!(out.contains("petal alone: ") && out.contains("while denoising: "), "{out}");
}
