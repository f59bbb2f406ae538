//! KSE against the independent numpy reference in `scripts/reference/kse_reference.py`:
//! per-input-channel slicing with C_in ≠ N_out, fewer kernels than neighbours, duplicate
//! kernels and constant channels (no NaN).

use std::collections::BTreeSet;
use std::process::Command;

use petal::science::model::kse::{ConvWeights, layer_kse};
use serde_json::Value;

use crate::dicomweb_client::venv_python;

fn floats(value: &Value) -> Vec<f64> {
    value.as_array().expect("array").iter().map(|v| v.as_f64().expect("number")).collect()
}

fn flagged(scores: &[f64], phi: f64) -> BTreeSet<usize> {
    scores.iter().enumerate().filter(|(_, s)| **s < phi).map(|(i, _)| i).collect()
}

#[test]
fn kse_matches_the_numpy_reference() {
    let output = Command::new(venv_python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/reference/kse_reference.py"))
        .output()
        .expect("run the reference");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let cases: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let cases = cases.as_object().expect("cases");
    assert_eq!(cases.len(), 4);
    for (name, case) in cases {
        let shape: Vec<usize> =
            case["shape"].as_array().expect("shape").iter().map(|v| v.as_u64().expect("dim") as usize).collect();
        let values: Vec<f32> = floats(&case["weights"]).into_iter().map(|v| v as f32).collect();
        let weights = ConvWeights::new(shape[0], shape[1], shape[2] * shape[3], values).expect("shape");
        let ours = layer_kse(&weights);
        for (label, got, want) in [
            ("sparsity", &ours.sparsity, floats(&case["sparsity"])),
            ("entropy", &ours.entropy, floats(&case["entropy"])),
            ("score", &ours.score, floats(&case["score"])),
        ] {
            assert_eq!(got.len(), want.len(), "{name} {label}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g.is_finite(), "{name} {label}: NaN");
                assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{name} {label}: {got:?} vs {want:?}");
            }
        }
        assert_eq!(flagged(&ours.score, 0.3), flagged(&floats(&case["score"]), 0.3), "{name}: flagged channels");
    }
    let mixed = &cases["c_in_differs_from_n_out"];
    assert_ne!(
        flagged(&floats(&mixed["score"]), 0.3),
        flagged(&floats(&mixed["reshape_score"]), 0.3),
        "the case must show that reshaping instead of slicing flags other channels"
    );
}
