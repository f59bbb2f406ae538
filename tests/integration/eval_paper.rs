//! `petal eval paper --quick`: the whole experiment at a tiny scale, v1-net the shipped
//! model. It must write the report, the results and the figures with finite figures for
//! every network, tune each matched filter to its network's noise, and a second run must
//! reuse every network it trained.

use std::process::Command;

use crate::common::petal_binary;

fn decoded_png(path: &std::path::Path) -> (u32, u32) {
    let file = std::fs::File::open(path).expect("png file");
    let reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("a PNG");
    (reader.info().width, reader.info().height)
}

#[test]
fn the_quick_paper_evaluation_runs_end_to_end_and_resumes() {
    let dir = tempfile::tempdir().expect("dir");
    let work = dir.path().join("work");
    let run = || {
        let output = Command::new(petal_binary())
            .args(["eval", "paper", "--quick", "--work"])
            .arg(&work)
            .output()
            .expect("run eval paper");
        assert!(output.status.success(), "eval paper: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = run();
    assert!(!first.contains("reusing"), "nothing to reuse on the first run: {first}");
    let results = work.join("results");
    let report = std::fs::read_to_string(results.join("paper-table1.md")).expect("report");
    for expected in [
        "v1-net",
        "v2-net",
        "FT-net",
        "TGD-net",
        "TGD_N2N-net",
        "TGD²_N2N-net",
        "Paired comparisons",
        "KSE threshold sweep",
        "At matched noise",
        "OSEM alone on v2 data: lesion biases",
    ] {
        assert!(report.contains(expected), "the report names {expected}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results.join("results.json")).expect("results.json")).expect("json");
    let scores = json["scores"].as_array().expect("scores");
    assert_eq!(scores.len(), 14, "OSEM alone and six networks, on v2 and v1 data");
    for s in scores {
        let cov = s["liver_cov"].as_f64().expect("liver_cov");
        assert!(cov.is_finite() && cov > 0.0, "{s}");
        for field in ["lesion_bias", "truth_bias"] {
            let biases = s[field].as_array().expect(field);
            assert!(biases.len() >= 2, "the quick test patient has at least two lesions: {s}");
            assert!(biases.iter().all(|b| b.as_f64().is_some_and(f64::is_finite)), "{s}");
        }
    }
    let matched = json["matched"].as_array().expect("matched");
    assert_eq!(matched.len(), 12, "a matched filter for each network on each version");
    for m in matched {
        let fwhm = m["fwhm_mm"].as_f64().expect("fwhm_mm");
        assert!(fwhm >= 0.0, "{m}");
        if m["network_quieter_than_every_filter"] == true {
            continue;
        }
        // The filter was tuned to the network's noise: its liver CoV lands on the network's
        // (or stays below it when OSEM alone is quieter).
        let network = scores
            .iter()
            .find(|s| s["network"] == m["network"] && s["data"] == m["data"])
            .expect("the matched network's scores");
        let (target, reached) =
            (network["liver_cov"].as_f64().expect("cov"), m["scores"]["liver_cov"].as_f64().expect("cov"));
        assert!(reached <= target * 1.02, "filtered to {reached} % for a network at {target} %: {m}");
        assert!(fwhm == 0.0 || reached >= target * 0.98, "filtered to {reached} % for a network at {target} %: {m}");
    }
    let networks = json["networks"].as_array().expect("networks");
    let fraction = |name: &str| {
        networks.iter().find(|n| n["name"] == name).and_then(|n| n["fraction_retrained"].as_f64()).expect(name)
    };
    assert_eq!(fraction("v1-net"), 1.0);
    assert!(fraction("TGD-net") < 1.0 && fraction("FT-net") < 1.0, "fine-tunes change part of the network");
    let sweep = json["sweep"].as_array().expect("sweep");
    let flagged: Vec<f64> = sweep.iter().map(|r| r["percent_flagged"].as_f64().expect("percent")).collect();
    assert_eq!(flagged.len(), 4);
    assert!(flagged.windows(2).all(|w| w[0] <= w[1]), "a higher φ flags at least as much: {flagged:?}");
    assert!(!json["comparisons"].as_array().expect("comparisons").is_empty());
    let (width, height) = decoded_png(&results.join("paper-slices.png"));
    assert!(width > height && height > 100, "two rows of eight slices: {width}×{height}");
    decoded_png(&results.join("paper-bias-cov.png"));
    decoded_png(&results.join("paper-kse-sweep.png"));

    let second = run();
    // Both stages of v2-net, FT-net, TGD-net and the two online rounds (v1-net is shipped).
    assert_eq!(second.matches("reusing").count(), 6, "every network is reused: {second}");
}
