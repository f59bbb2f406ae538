//! `petal train-base` on a tiny model: it learns (the loss falls), writes a complete model
//! directory, and a run killed mid-way resumes from its checkpoint.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use petal::science::model::directory::StoredModel;

use crate::common::petal_binary;

const TINY: [&str; 16] = [
    "--width-multiplier",
    "0.125",
    "--patients",
    "1",
    "--size",
    "32",
    "--slices",
    "4",
    "--batch",
    "4",
    "--patch",
    "16",
    "--count-levels",
    "0.25,1",
    "--checkpoint-every",
    "10",
];

/// `petal train-base` of the tiny settings for `steps` steps into `out`, with `extra` flags.
fn tiny_run(out: &std::path::Path, steps: &str, extra: &[&str]) -> std::process::Output {
    Command::new(petal_binary())
        .arg("train-base")
        .args(TINY)
        .args(["--steps", steps])
        .args(extra)
        .arg(out)
        .output()
        .expect("run train-base")
}

#[test]
fn a_tiny_base_model_learns_and_its_directory_is_complete() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("model");
    let output = Command::new(petal_binary())
        .arg("train-base")
        .args(TINY)
        .args(["--steps", "60", "--learning-rate", "0.003"])
        .arg(&out)
        .output()
        .expect("run train-base");
    assert!(output.status.success(), "train-base: {}", String::from_utf8_lossy(&output.stderr));
    let model = StoredModel::load(&out).expect("a loadable model directory");
    assert_eq!(model.config.width_multiplier, 0.125);
    for file in ["model.onnx", "report.md", "loss.png", "metrics.json", "training.json"] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    assert!(!out.join("checkpoint").exists(), "checkpoints are removed once the run finished");
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("training.json")).expect("read")).expect("json");
    let losses: Vec<f64> =
        history["losses"].as_array().expect("losses").iter().map(|p| p["loss"].as_f64().expect("loss")).collect();
    assert_eq!(losses.len(), 60);
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    let (first, last) = (mean(&losses[..10]), mean(&losses[50..]));
    assert!(last < first, "the loss falls: first ten steps {first}, last ten {last}");
    let report = std::fs::read_to_string(out.join("report.md")).expect("report");
    assert!(report.contains("petal train-base") && report.contains("Held-out"), "{report}");
    // The room TGD has: what dropping the kernels KSE flags at φ 0.3 costs, per count level.
    assert!(report.contains("## Room for TGD (KSE at φ 0.3)"), "{report}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).expect("metrics")).expect("JSON");
    let room = &metrics["kernel_room"];
    assert_eq!(room["levels"].as_array().map(Vec::len), Some(2), "{room}");
    let flagged = room["flagged_percent"].as_f64().expect("flagged share");
    assert!((0.0..=100.0).contains(&flagged), "{room}");
    for level in room["levels"].as_array().expect("levels") {
        let psnr = level["psnr"].as_array().expect("psnr");
        assert!(psnr.iter().all(|p| p.as_f64().is_some_and(f64::is_finite)), "{level}");
    }
}

#[test]
fn clinical_geometry_is_named_in_the_report_and_a_field_too_small_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |extra: &[&str], out: &str| tiny_run(&dir.path().join(out), "5", extra);
    let refused = run(&["--pixel-mm", "4", "--sections", "liver"], "too-small");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("field of view"), "{stderr}");

    let geometry = ["--pixel-mm", "14", "--slice-mm", "3", "--fwhm-mm", "6", "--sections", "liver,thorax"];
    let output = run(&geometry, "sections");
    assert!(output.status.success(), "train-base: {}", String::from_utf8_lossy(&output.stderr));
    let report = std::fs::read_to_string(dir.path().join("sections/report.md")).expect("report");
    for named in ["14 × 3 mm voxels", "6 mm scanner resolution", "sections torso-liver, torso-thorax in turn"] {
        assert!(report.contains(named), "the report names {named}: {report}");
    }

    // The group lasso is part of the run's description (and so of its fingerprint).
    let sparse = run(&["--channel-sparsity", "0.0001"], "sparse");
    assert!(sparse.status.success(), "train-base: {}", String::from_utf8_lossy(&sparse.stderr));
    let report = std::fs::read_to_string(dir.path().join("sparse/report.md")).expect("report");
    assert!(report.contains("group lasso ×0.0001 on input channels"), "{report}");
}

#[test]
fn a_kernel_reserve_is_flagged_by_kse_and_needs_a_model_to_start_from() {
    use petal::science::model::tgd_mask::mask_of_convolutions;
    use petal::science::training::base::reserve::{KernelReserve, ReserveSettings};

    let dir = tempfile::tempdir().expect("dir");
    let run = |extra: &[&str], out: &str| tiny_run(&dir.path().join(out), "12", extra);
    let refused = run(&["--reserve-share", "0.3"], "no-start");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("model to start from"), "{stderr}");

    let parent = run(&[], "parent");
    assert!(parent.status.success(), "train-base: {}", String::from_utf8_lossy(&parent.stderr));
    let parent_dir = dir.path().join("parent");
    let whole = run(&["--init-from", parent_dir.to_str().expect("path"), "--reserve-share=1"], "whole");
    assert!(!whole.status.success());
    let stderr = String::from_utf8_lossy(&whole.stderr);
    assert!(stderr.contains("--reserve-share must lie in [0, 1)"), "{stderr}");
    let reserved = run(&["--init-from", parent_dir.to_str().expect("path"), "--reserve-share", "0.3"], "reserved");
    assert!(reserved.status.success(), "train-base: {}", String::from_utf8_lossy(&reserved.stderr));
    let report = std::fs::read_to_string(dir.path().join("reserved/report.md")).expect("report");
    assert!(report.contains("30 % of each layer's channels held in reserve"), "{report}");

    // The channels set aside are the parent's lowest-KSE 30 %; after the run KSE at φ 0.3
    // flags every one of them, so a TGD round retrains exactly the reserve (and maybe more).
    let settings = ReserveSettings { share: 0.3, activation_floor: 0.01, outgoing_scale: 0.3 };
    let start = StoredModel::load(&parent_dir).expect("parent");
    let reserve = KernelReserve::choose(&start.weights, settings).expect("reserve");
    let trained = StoredModel::load(&dir.path().join("reserved")).expect("reserved model");
    let mask = mask_of_convolutions(&trained.weights.convolutions().expect("convolutions"), 0.3);
    for (consumer, channels) in reserve.channels() {
        let producer = &mask.layers[consumer - 2];
        for &c in channels {
            assert!(
                producer.retrain[c],
                "{} channel {c} is reserved but KSE keeps it: {:?}",
                producer.layer, producer.kse
            );
        }
    }
}

#[test]
fn a_killed_run_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("model");
    let mut child = Command::new(petal_binary())
        .arg("train-base")
        .args(TINY)
        .args(["--steps", "100000"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start train-base");
    let state = out.join("checkpoint").join("state.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    let step = loop {
        let step = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["step"].as_u64());
        if let Some(step) = step.filter(|s| *s >= 20) {
            break step;
        }
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // Asked for fewer steps than already taken: it resumes, trains no further and finishes.
    let output = Command::new(petal_binary())
        .arg("train-base")
        .args(TINY)
        .args(["--steps", &step.to_string()])
        .arg(&out)
        .output()
        .expect("resume");
    assert!(output.status.success(), "resume: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("resumed from the checkpoint at step"), "{stdout}");
    StoredModel::load(&out).expect("the resumed run wrote its model");
}

#[test]
fn real_paired_series_train_a_model_too() {
    let dir = tempfile::tempdir().expect("dir");
    let status = Command::new(petal_binary())
        .args(["simulate", "--size", "32", "--slices", "4", "--realizations", "2", "--low-count-fraction", "0.25"])
        .arg(dir.path())
        .status()
        .expect("simulate");
    assert!(status.success());
    let study = dir.path().join("sim-00001");
    // Two pairs (the last is held out): each low-count realization against the full count.
    let pairs = dir.path().join("pairs");
    for (pair, input) in [("a", "low-count-01"), ("b", "low-count-02")] {
        for (role, folder) in [("input", input), ("target", "full-count")] {
            let to = pairs.join(pair).join(role);
            std::fs::create_dir_all(&to).expect("dir");
            for file in std::fs::read_dir(study.join(folder)).expect("series") {
                let file = file.expect("entry").path();
                std::fs::copy(&file, to.join(file.file_name().expect("name"))).expect("copy");
            }
        }
    }
    let out = dir.path().join("model");
    let output = Command::new(petal_binary())
        .arg("train-base")
        .args(["--width-multiplier", "0.125", "--batch", "2", "--patch", "16", "--steps", "5"])
        .arg("--pairs")
        .arg(&pairs)
        .arg(&out)
        .output()
        .expect("train-base --pairs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).expect("report");
    assert!(report.contains("1 real pairs") && report.contains("held out: b"), "{report}");
}
