//! `petal eval rounds --quick`: online learning judged against the truth at a tiny scale.
//! Every round must be measured against the noiseless reconstruction (before and after,
//! lesions, liver noise, new hot spots), gated with the gate's error estimate, compared
//! with the truth's verdict, and a second run must reuse every cached case.

use std::process::Command;

use crate::common::petal_binary;

#[test]
fn the_quick_rounds_evaluation_judges_each_round_by_the_truth_and_resumes() {
    let dir = tempfile::tempdir().expect("dir");
    let work = dir.path().join("work");
    let run = || {
        let output = Command::new(petal_binary())
            .args(["eval", "rounds", "--quick", "--seeds", "3..4", "--work"])
            .arg(&work)
            .output()
            .expect("run eval rounds");
        assert!(output.status.success(), "eval rounds: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = run();
    assert!(!first.contains("reusing"), "nothing to reuse on the first run: {first}");
    let results = work.join("results");
    let report = std::fs::read_to_string(results.join("rounds.md")).expect("rounds.md");
    for expected in [
        "## Summary",
        "## First rounds",
        "## Follow-up scans and second rounds",
        "## Lesions moved further from the truth",
        "domain shift",
        "same domain",
    ] {
        assert!(report.contains(expected), "the report has {expected}:\n{report}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results.join("rounds.json")).expect("rounds.json")).expect("json");
    let cases = json["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 2, "one patient, both cases");
    assert_eq!(cases[0]["recon"], "v2", "the shipped base is trained on v1: the domain shift is v2");
    assert_eq!(cases[1]["recon"], "v1");
    for case in cases {
        let round = &case["round"];
        for side in ["before", "after"] {
            let measures = &round[side];
            for field in ["error", "error_held_out", "liver_noise_percent"] {
                let value = measures[field].as_f64().unwrap_or(f64::NAN);
                assert!(value.is_finite() && value > 0.0, "{side}.{field}: {measures}");
            }
            assert!(measures["new_hot_spots"].is_u64(), "{measures}");
            let lesions = measures["lesions"].as_array().expect("lesions");
            assert!(!lesions.is_empty(), "the phantom's lesions are measured: {measures}");
            assert!(lesions.iter().all(|l| l["truth_suv_mean"].as_f64().is_some_and(|v| v > 0.0)));
        }
        // The truth's verdict follows from the change, and agreement from the gate's decision.
        let change = round["error_change_percent"].as_f64().expect("change");
        let truth = round["truth"].as_str().expect("truth");
        let expected = if change < -1.0 {
            "better"
        } else if change > 1.0 {
            "worse"
        } else {
            "unchanged"
        };
        assert_eq!(truth, expected, "{round}");
        let passed = round["gate"]["passed"].as_bool().expect("gate");
        let agrees = truth == "unchanged" || (truth == "better") == passed;
        assert_eq!(round["gate_agrees"], agrees, "{round}");
        let estimate = &round["gate"]["measures"]["error_change"];
        assert!(estimate["low_percent"].as_f64() <= estimate["high_percent"].as_f64(), "{estimate}");
        // The checks on the series as used ran on the full-count series, against its input.
        let as_used = &round["gate"]["measures"]["as_used"];
        assert_eq!(as_used["series"], "full_count", "{as_used}");
        assert!(as_used["noise_input_percent"].as_f64().is_some_and(|n| n > 0.0), "{as_used}");
        assert!(case["oracle"]["after"]["error"].as_f64().is_some_and(f64::is_finite), "{case}");
        assert!(case["follow_up"]["second_round"]["after"]["error"].as_f64().is_some_and(f64::is_finite), "{case}");
    }
    assert_eq!(json["summary"]["rounds"], 4, "first and second rounds of both cases");

    let second = run();
    assert_eq!(second.matches("reusing").count(), 2, "both cases come from the cache: {second}");
}
