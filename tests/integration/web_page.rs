//! The web page in a real browser: headless Chromium driven by Selenium
//! (`tests/python/web_page.py`) through sign-in, the side-by-side viewer of a denoised
//! series, a round started by the study's N2N halves and watched to its end, a rollback to
//! version 0 made with the keyboard only, and sign-out. Screenshots go to
//! `PETAL_SCREENSHOT_DIR` (`scripts/screenshots` points it at docs/screenshots).

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::Engine;
use crate::learning::{LIVE_ROUND, learning_app, post_series, study, wait_round};
use crate::pipeline::{manifest, series_uid, wait_for_state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_radiologist_and_an_admin_use_the_page_in_chromium() {
    // A round that learns: the patient's scans are reconstructed with v2, which the base model
    // never saw (the paper's setting), and the steps are as many and as large as in the round
    // of learning.rs that measures the gain. The page needs it to go live.
    let app = learning_app(Engine::Sqlite, &["--round-defaults", LIVE_ROUND]).await;
    let page = app.client.get(app.url("/")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"), "{policy}");

    let dir = tempfile::tempdir().expect("dir");
    let simulated = study(dir.path(), 307, petal::science::simulation::ReconVersion::V2);
    let manifest = manifest(&simulated);
    for folder in ["full-count", "n2n-half-a", "n2n-half-b"] {
        post_series(&app, &simulated, folder).await;
    }
    let source = series_uid(&manifest, "full-count");
    let done = wait_for_state(&app, &source, &["done"]).await;
    assert!(done["patient_key"].is_string());
    let patient_key = done["patient_key"].as_str().expect("patient");
    let first = crate::learning::first_round(&app, patient_key).await;
    let id = first["id"].as_i64().expect("the halves started a round");
    let round = wait_round(&app, id, |r| !matches!(r["state"].as_str(), Some("queued" | "running"))).await;
    // The activated version re-denoises the series; the page shows it once that is done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while crate::pipeline::status(&app, &source).await["model_version"]["id"] != round["version_id"] {
        assert!(std::time::Instant::now() < deadline, "never re-denoised: {round}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    wait_for_state(&app, &source, &["done"]).await;

    let shots = std::env::var("PETAL_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("screenshots"));
    let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/web_page.py"))
        .arg(&app.base_url)
        .arg(&app.admin_token)
        .arg(manifest["study_uid"].as_str().expect("study"))
        .arg(&source)
        .arg(simulated.join("full-count"))
        .arg(&shots)
        .output()
        .expect("run the browser test (scripts/setup installs chromium, chromium-driver and selenium)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "web_page.py failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&output.stdout).expect("json from web_page.py");
    assert!(seen["signed_in_as"].as_str().is_some_and(|s| s.ends_with("(admin)")), "{seen}");
    assert_eq!(seen["slice_moved"], true, "the arrow keys move the slice: {seen}");
    assert!(seen["images"][1].as_str().is_some_and(|a| a.starts_with("Denoised slice")), "{seen}");
    let (shown, source_suv) = (seen["suv_max_shown"].as_f64(), seen["suv_max_source"].as_f64());
    let (shown, source_suv) = (shown.expect("shown SUV"), source_suv.expect("source SUV"));
    assert!(
        (shown - source_suv).abs() <= 0.005 + 1e-3 * source_suv,
        "the page shows SUVmax {shown}, the source file's header gives {source_suv}"
    );
    assert_eq!(seen["rounds"], serde_json::json!(["activated"]), "{seen}");
    let report = seen["report"].as_str().unwrap_or_default();
    assert!(report.contains("Parameters retrained"), "{seen}");
    assert!(report.contains("Estimated error against the clean image"), "the gate's estimate is shown: {seen}");
    // The study holds the full-count series the halves were split from: the gate checked it.
    assert!(report.contains("Noise in uniform regions, on the full-count series"), "{seen}");
    assert!(seen["active_after"].as_str().is_some_and(|a| a.contains("version 0")), "{seen}");
    let after = seen["rounds_after_trigger"].as_array().expect("rounds after the trigger");
    assert_eq!(after.len(), 2, "the page started a second round: {seen}");
    assert!(after.iter().all(|s| s.as_str().is_some_and(|s| !s.starts_with("queued") && !s.starts_with("running"))));
    assert_eq!(seen["signed_out"], true);
    for name in ["viewer.png", "patient.png"] {
        assert!(shots.join(name).metadata().is_ok_and(|m| m.len() > 10_000), "{name} was saved");
    }
    let audit = app.admin_json(&format!("/api/v1/audit?action=model.activate&patient_key={patient_key}")).await;
    assert!(audit["events"].as_array().is_some_and(|e| e.len() >= 2), "the page's rollback is audited: {audit}");
    app.stop().await;
}
