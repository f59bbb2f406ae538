//! `petal eval nema --quick`: the NEMA IEC body phantom through OSEM and through the shipped
//! model, read as a physicist reads it. The figures must be physical ones: contrast recovery
//! that grows with sphere size, noise that petal lowers, a background that stays near SUV 1,
//! and a Gaussian filter tuned to petal's voxel noise.

use std::process::Command;

use crate::common::petal_binary;
use crate::learning::shipped_model;

#[test]
fn the_quick_nema_evaluation_reads_every_sphere_and_the_background() {
    let dir = tempfile::tempdir().expect("dir");
    let output = Command::new(petal_binary())
        .args(["eval", "nema", "--quick", "--model"])
        .arg(shipped_model())
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run eval nema");
    assert!(output.status.success(), "eval nema: {}", String::from_utf8_lossy(&output.stderr));
    let report = std::fs::read_to_string(dir.path().join("nema.md")).expect("nema.md");
    for expected in [
        "## 100 % of the counts",
        "## 25 % of the counts",
        "| 10 mm |",
        "| 37 mm |",
        "BV (60 ROIs of 10 mm)",
        "EARL 1 RC_max",
    ] {
        assert!(report.contains(expected), "the report has {expected}:\n{report}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("nema.json")).expect("nema.json")).expect("json");
    let numbers = |value: &serde_json::Value| -> Vec<f64> {
        value.as_array().expect("array").iter().map(|v| v.as_f64().expect("number")).collect()
    };
    for figure in ["nema-slices.png", "nema-crc.png"] {
        let bytes = std::fs::read(dir.path().join(figure)).expect(figure);
        assert_eq!(&bytes[1..4], b"PNG", "{figure} is a PNG");
    }
    assert_eq!(json["noiseless_osem"]["false_hot_spots"], 0.0, "no hot spot without noise");
    let reference = numbers(&json["noiseless_osem"]["crc"]);
    assert_eq!(reference.len(), 6);
    assert!(reference[5] > reference[0] + 0.2, "noiseless OSEM recovers the 37 mm sphere best: {reference:?}");
    let levels = json["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 2);
    for level in levels {
        let osem = &level["osem"]["mean"];
        let petal = &level["petal"]["mean"];
        let number = |v: &serde_json::Value, field: &str| v[field].as_f64().expect(field);
        // Noise: OSEM has some, petal has less, and the matched filter reaches petal's.
        let (osem_bv, petal_bv) =
            (number(osem, "background_variability_percent"), number(petal, "background_variability_percent"));
        assert!(osem_bv > 0.5, "OSEM's background varies: {osem_bv}");
        assert!(petal_bv < osem_bv, "petal lowers the background variability: {petal_bv} vs {osem_bv}");
        let (osem_cov, petal_cov) = (number(osem, "background_cov_percent"), number(petal, "background_cov_percent"));
        assert!(petal_cov < osem_cov, "petal lowers the voxel noise: {petal_cov} vs {osem_cov}");
        let matched = number(&level["matched_filter"]["mean"], "background_cov_percent");
        assert!((matched - petal_cov).abs() < 0.02 * petal_cov, "matched filter CoV {matched} vs petal {petal_cov}");
        // The background stays near its true SUV of 1 in both.
        for image in [osem, petal] {
            let mean = number(image, "background_mean");
            assert!((mean - 1.0).abs() < 0.03, "background SUV {mean}");
        }
        let crc = numbers(&osem["crc"]);
        assert!(crc[5] > crc[0], "OSEM recovers the 37 mm sphere better than the 10 mm: {crc:?}");
        assert!(numbers(&petal["crc"]).iter().all(|c| c.is_finite() && *c > 0.0));
        for field in ["rc_max", "rc_a50", "suv_peak"] {
            let values = numbers(&petal[field]);
            assert!(values.iter().all(|v| v.is_finite() && *v > 0.0), "{field}: {values:?}");
        }
        // A 1 mL mean never exceeds the hottest voxel, and the larger sphere reads higher.
        let (peak, max) = (numbers(&osem["suv_peak"]), numbers(&osem["suv_max"]));
        assert!(peak.iter().zip(&max).all(|(p, m)| p <= m), "SUVpeak {peak:?} above SUVmax {max:?}");
        assert!(peak[5] > peak[0], "SUVpeak of the 37 mm sphere {} vs the 10 mm {}", peak[5], peak[0]);
    }
}
