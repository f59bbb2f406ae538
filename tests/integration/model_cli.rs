//! `petal model kse` on a safetensors file in the documented layout.

use std::process::Command;

use petal::science::model::kse::{ConvWeights, layer_kse};
use safetensors::{Dtype, tensor::TensorView};
use serde_json::Value;

use crate::common::petal_binary;

#[test]
fn model_kse_reports_flags_and_the_retrained_fraction() {
    let dir = tempfile::tempdir().expect("dir");
    let conv1: Vec<f32> = (0..4 * 3 * 9).map(|i| ((i * 37 % 17) as f32 - 8.0) / 10.0).collect();
    let mut conv2: Vec<f32> = (0..2 * 4 * 9).map(|i| ((i * 13 % 11) as f32 - 5.0) / 7.0).collect();
    // Input channel 2 of conv2 is empty: conv1's output channel 2 must be flagged.
    for n in 0..2 {
        for k in 0..9 {
            conv2[(n * 4 + 2) * 9 + k] = 0.0;
        }
    }
    let gamma = vec![1.0f32; 2];
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (b1, b2, bg) = (bytes(&conv1), bytes(&conv2), bytes(&gamma));
    let tensors = vec![
        ("conv1.weight", TensorView::new(Dtype::F32, vec![4, 3, 3, 3], &b1).expect("view")),
        ("conv2.weight", TensorView::new(Dtype::F32, vec![2, 4, 3, 3], &b2).expect("view")),
        ("bn2.gamma", TensorView::new(Dtype::F32, vec![2], &bg).expect("view")),
    ];
    std::fs::write(dir.path().join("model.safetensors"), safetensors::serialize(tensors, None).expect("serialize"))
        .expect("write");
    let output = Command::new(petal_binary())
        .args(["model", "kse", &dir.path().display().to_string(), "--phi", "0.3", "--json"])
        .output()
        .expect("run petal model kse");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let expected = layer_kse(&ConvWeights::new(2, 4, 9, conv2).expect("shape"));
    let flagged = expected.score.iter().filter(|s| **s < 0.3).count() as u64;
    assert!(expected.score[2] < 0.3);
    assert_eq!(report["layers"][1]["input_channels_flagged"], flagged);
    assert_eq!(report["layers"][0]["output_channels_retrained"], flagged);
    assert_eq!(report["layers"][1]["output_channels_retrained"], 0, "the last layer is never retrained");
    let total = (4 * (27 + 1) + 2 * (36 + 1 + 2)) as f64;
    let fraction = report["fraction_retrained"].as_f64().expect("fraction");
    assert!((fraction - flagged as f64 * 28.0 / total).abs() < 1e-12);

    let missing = Command::new(petal_binary()).args(["model", "kse", "/nonexistent"]).output().expect("run");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent"));
}

fn petal(args: &[&str]) -> std::process::Output {
    Command::new(petal_binary()).args(args).output().expect("run petal")
}

#[test]
fn model_inspect_export_and_import_round_trip_through_the_binary() {
    let dir = tempfile::tempdir().expect("dir");
    let model_dir = dir.path().join("small");
    let model = crate::common::small_model(5);
    model.save(&model_dir, None, None).expect("save");
    let model_arg = model_dir.display().to_string();

    let inspect = petal(&["model", "inspect", &model_arg]);
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains(&format!("trainable parameters: {}", model.config.parameter_count())), "{text}");
    assert!(text.contains(&model.sha256), "{text}");

    // Faithful export and import give back the same bits (same sha256).
    let faithful = dir.path().join("faithful.onnx");
    let export = petal(&["model", "export-onnx", &model_arg, &faithful.display().to_string()]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let imported_dir = dir.path().join("imported");
    let import = petal(&["model", "import-onnx", &faithful.display().to_string(), &imported_dir.display().to_string()]);
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let imported = petal::science::model::directory::StoredModel::load(&imported_dir).expect("imported model");
    assert_eq!(imported.sha256, model.sha256);
    assert_eq!(imported, model);

    // The folded graph imports with identity BatchNorm, and the report says so.
    let folded = dir.path().join("folded.onnx");
    let export = petal(&["model", "export-onnx", &model_arg, &folded.display().to_string(), "--folded"]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let folded_dir = dir.path().join("from-folded");
    let import = petal(&["model", "import-onnx", &folded.display().to_string(), &folded_dir.display().to_string()]);
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let report = std::fs::read_to_string(folded_dir.join("report.md")).expect("report");
    assert!(report.contains("identity"), "{report}");

    // Not a model: a clear error naming the file.
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a protobuf").expect("write");
    let import =
        petal(&["model", "import-onnx", &junk.display().to_string(), &dir.path().join("x").display().to_string()]);
    assert!(!import.status.success());
    assert!(String::from_utf8_lossy(&import.stderr).contains("junk.onnx"));
}
