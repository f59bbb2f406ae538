//! The main job through the real server: a complete series posted over STOW-RS becomes a
//! derived series in the same study without any further request, exactly once; QIDO lists
//! it and WADO returns it; re-runs supersede; what is not denoised says why.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use petal::dicom::simulated_study::{Silent, SimulationSettings, write_study};
use petal::science::simulation::{Grid, ReconVersion};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{Engine, TestApp};
use crate::fixtures::{SeriesSpec, real_pet_files};
use crate::on_both_engines;
use crate::stow::stow;

/// A small simulated study (64×64×8, two low-count realizations) written under `dir`.
pub fn simulated_study(dir: &Path, seed: u64) -> PathBuf {
    let settings = SimulationSettings {
        realizations: 2,
        low_count_fraction: 0.25,
        ..SimulationSettings::original(seed, Grid::new(64, 8), ReconVersion::V1)
    };
    write_study(&settings, dir, &Silent).expect("simulate");
    dir.join(settings.study_folder())
}

pub fn series_files(folder: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(folder).expect("folder").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).expect("read")).collect()
}

pub fn manifest(study: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(study.join("study.json")).expect("manifest")).expect("json")
}

pub fn series_uid(manifest: &Value, folder: &str) -> String {
    manifest["series"]
        .as_array()
        .expect("series")
        .iter()
        .find(|s| s["folder"] == folder)
        .and_then(|s| s["series_uid"].as_str())
        .expect("series uid")
        .to_owned()
}

pub async fn status(app: &TestApp, series_uid: &str) -> Value {
    app.admin_json(&format!("/api/v1/series/{series_uid}")).await
}

/// Polls the series until it reaches one of `states`.
pub async fn wait_for_state(app: &TestApp, series_uid: &str, states: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let current = status(app, series_uid).await;
        if states.contains(&current["state"].as_str().unwrap_or_default()) {
            return current;
        }
        assert!(Instant::now() < deadline, "series never reached {states:?}: {current}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    app.admin_json(path).await
}

async fn retrieve_series(app: &TestApp, study: &str, series: &str) -> usize {
    let response = app
        .client
        .get(app.url(&format!("/dicomweb/studies/{study}/series/{series}")))
        .header("accept", "multipart/related; type=\"application/dicom\"")
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("wado");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.bytes().await.expect("body");
    body.windows(4).filter(|w| w == b"DICM").count()
}

async fn a_posted_study_gets_one_derived_series_without_further_requests(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let dir = tempfile::tempdir().expect("dir");
    let study = simulated_study(dir.path(), 41);
    let manifest = manifest(&study);
    let study_uid = manifest["study_uid"].as_str().expect("study uid").to_owned();
    for folder in ["full-count", "n2n-half-a", "low-count-01"] {
        let (code, _, _) = stow(&app, &app.admin_token, "/dicomweb/studies", &series_files(&study.join(folder))).await;
        assert_eq!(code, StatusCode::OK, "{folder} stored");
    }
    let source = series_uid(&manifest, "full-count");
    let done = wait_for_state(&app, &source, &["done", "failed"]).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["expected_instances"], 8);
    assert_eq!(done["normalisation_used"]["kind"], "suv_bw", "the simulated header allows SUVbw");
    assert!(done["model_version"]["device_uid"].as_str().is_some_and(|u| u.starts_with("2.25.")));
    let derived = done["derived_series_uid"].as_str().expect("derived series").to_owned();

    // The training material is stored, not denoised, and says why.
    let half = status(&app, &series_uid(&manifest, "n2n-half-a")).await;
    assert_eq!(half["state"], "not_denoised");
    assert!(half["reason"].as_str().is_some_and(|r| r.contains("Noise2Noise")), "{half}");
    let low = status(&app, &series_uid(&manifest, "low-count-01")).await;
    assert!(low["reason"].as_str().is_some_and(|r| r.contains("low-count")), "{low}");

    // The derived series is indexed like a received one: QIDO lists it, WADO returns it.
    let listed = get_json(&app, &format!("/dicomweb/studies/{study_uid}/series")).await;
    let uids: Vec<&str> =
        listed.as_array().expect("series").iter().filter_map(|s| s["0020000E"]["Value"][0].as_str()).collect();
    assert!(uids.contains(&derived.as_str()), "QIDO lists the derived series: {uids:?}");
    assert_eq!(retrieve_series(&app, &study_uid, &derived).await, 8, "one derived instance per slice");
    let own = status(&app, &derived).await;
    assert_eq!(own["state"], "not_denoised", "petal's own series is never denoised again");
    assert_eq!(own["source_series_uid"], source.as_str());

    // Exactly one denoise job ran, and it succeeded.
    let jobs = get_json(&app, "/api/v1/jobs?kind=denoise").await;
    let jobs = jobs["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["state"], "succeeded");

    // The metrics show the queue by kind and state, and the pipeline's timings.
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("petal_jobs{kind=\"denoise\",state=\"succeeded\"} 1"), "{metrics}");
    for family in [
        "petal_denoise_series_seconds_count",
        "petal_inference_slab_seconds_count",
        "petal_job_queue_wait_seconds_count",
    ] {
        assert!(metrics.contains(family), "{family} missing from /metrics");
    }

    // Re-sending the whole series changes nothing.
    let (code, _, _) =
        stow(&app, &app.admin_token, "/dicomweb/studies", &series_files(&study.join("full-count"))).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(get_json(&app, "/api/v1/jobs?kind=denoise").await["jobs"].as_array().map(Vec::len), Some(1));

    // A strength that does not exist is refused with the ones that do.
    let path = format!("/api/v1/series/{source}/denoise");
    let (refused, body) = app.admin(Method::POST, &path, Some(&serde_json::json!({ "strength": "max" }))).await;
    assert_eq!(refused, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("lesion-preserving"), "{body}");

    // An admin re-run (here at another strength) adds a new derived series and supersedes the
    // first; both stay retrievable.
    let strength = serde_json::json!({ "strength": "lesion-preserving" });
    let (rerun, _) = app.admin(Method::POST, &path, Some(&strength)).await;
    assert_eq!(rerun, StatusCode::ACCEPTED);
    let again = loop {
        let current = wait_for_state(&app, &source, &["done", "failed"]).await;
        if current["derived_series_uid"] != derived.as_str() {
            break current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let second = again["derived_series_uid"].as_str().expect("second").to_owned();
    let history = again["derived_series"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0]["series_uid"], derived.as_str());
    assert_eq!(history[0]["superseded_by"], second.as_str());
    assert!(history[1]["superseded_by"].is_null());
    assert_eq!(retrieve_series(&app, &study_uid, &derived).await, 8);
    assert_eq!(retrieve_series(&app, &study_uid, &second).await, 8);

    // The strength is in the derived series' description and in the audit trail, both for
    // the admin's request and for the worker that made the series.
    let listed = get_json(&app, &format!("/dicomweb/studies/{study_uid}/series?SeriesInstanceUID={second}")).await;
    let description = listed[0]["0008103E"]["Value"][0].as_str().unwrap_or_default().to_owned();
    assert!(description.contains("[lesion-preserving]"), "{listed}");
    let asked = get_json(&app, "/api/v1/audit?action=series.denoise").await;
    assert_eq!(asked["events"][0]["detail"], "strength=lesion-preserving", "{asked}");
    let made = get_json(&app, "/api/v1/audit?action=series.denoised").await;
    let details: Vec<&str> =
        made["events"].as_array().expect("events").iter().filter_map(|e| e["detail"].as_str()).collect();
    assert_eq!(details.len(), 2, "one event per derived series: {details:?}");
    assert!(details[0].starts_with(&format!("strength=lesion-preserving derived_series={second} ")), "{details:?}");
    assert!(details[1].starts_with(&format!("strength=standard derived_series={derived} ")), "{details:?}");
    app.stop().await;
}
on_both_engines!(a_posted_study_gets_one_derived_series_without_further_requests);

async fn a_series_without_a_count_completes_after_its_quiet_period(engine: Engine) {
    let app = TestApp::spawn_with(engine, &["--series-quiet-period", "1s", "--job-poll-interval", "200ms"]).await;
    let complete = SeriesSpec::new(3);
    let mut gappy = SeriesSpec::new(4);
    gappy.patient_id = "PET-TEST-2".into();
    let (code, _, _) = stow(&app, &app.admin_token, "/dicomweb/studies", &complete.instances().expect("series")).await;
    assert_eq!(code, StatusCode::OK);
    // Slice 3 of 4 is missing: the volume cannot be assembled.
    let parts: Vec<Vec<u8>> = [0, 1, 3].iter().map(|i| gappy.instance(*i).expect("slice")).collect();
    let (code, _, _) = stow(&app, &app.admin_token, "/dicomweb/studies", &parts).await;
    assert_eq!(code, StatusCode::OK);
    let receiving = status(&app, &complete.series_uid).await;
    assert!(
        ["receiving", "complete", "queued", "denoising", "done"]
            .contains(&receiving["state"].as_str().unwrap_or_default())
    );
    assert!(receiving["expected_instances"].is_null(), "no NumberOfSlices in the header");

    let done = wait_for_state(&app, &complete.series_uid, &["done", "failed"]).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["normalisation_used"]["kind"], "robust", "no SUV tags: a robust scale");
    let failed = wait_for_state(&app, &gappy.series_uid, &["done", "failed"]).await;
    assert_eq!(failed["state"], "failed");
    assert!(failed["reason"].as_str().is_some_and(|r| r.contains("volume")), "{failed}");
    app.stop().await;
}
on_both_engines!(a_series_without_a_count_completes_after_its_quiet_period);

async fn real_pet_slices_are_handled_sensibly(engine: Engine) {
    let app = TestApp::spawn_with(engine, &["--series-quiet-period", "1s", "--job-poll-interval", "200ms"]).await;
    let files = real_pet_files();
    let parts: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("read")).collect();
    let (code, body, _) = stow(&app, &app.admin_token, "/dicomweb/studies", &parts).await;
    assert!(code.is_success(), "{body}");
    let mut outcomes = Vec::new();
    for bytes in &parts {
        let object = petal::dicom::header::read_dataset(bytes).expect("header");
        let uid = petal::dicom::header::text(&object, dicom_dictionary_std::tags::SERIES_INSTANCE_UID).expect("uid");
        let settled = wait_for_state(&app, &uid, &["done", "failed", "not_denoised"]).await;
        outcomes.push((settled["state"].as_str().unwrap_or_default().to_owned(), settled["reason"].clone()));
    }
    // The static whole-body slice is a one-slice volume: denoised with edge replication.
    assert_eq!(outcomes[0].0, "done", "{outcomes:?}");
    // The dynamic slice is stored and served, not denoised, with the reason.
    assert_eq!(outcomes[1].0, "not_denoised", "{outcomes:?}");
    assert!(outcomes[1].1.as_str().is_some_and(|r| r.contains("dynamic")), "{outcomes:?}");
    app.stop().await;
}
on_both_engines!(real_pet_slices_are_handled_sensibly);

async fn series_status_errors_say_what_to_do(engine: Engine) {
    let app = TestApp::spawn_with(engine, &["--no-worker"]).await;
    let (missing, _) = app.admin(Method::GET, "/api/v1/series/1.2.3.4", None).await;
    assert_eq!(missing, StatusCode::NOT_FOUND);
    let arriving = SeriesSpec::new(2);
    let (code, _, _) = stow(&app, &app.admin_token, "/dicomweb/studies", &arriving.instances().expect("series")).await;
    assert_eq!(code, StatusCode::OK);
    let (early, body) = app.admin(Method::POST, &format!("/api/v1/series/{}/denoise", arriving.series_uid), None).await;
    assert_eq!(early, StatusCode::CONFLICT);
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("still arriving")), "{body}");
    app.stop().await;
}
on_both_engines!(series_status_errors_say_what_to_do);

/// A short round, so the demo's round ends quickly; whether the gate passes it or not, the
/// demo must judge it by the truth.
const DEMO_ROUND: &str = r#"{"steps_per_pass": 20, "batch": 4, "patch": 16}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_command_posts_a_study_prints_where_its_denoised_series_is_and_judges_its_round() {
    let app = TestApp::spawn_with(Engine::Sqlite, &["--round-defaults", DEMO_ROUND]).await;
    let token_file = app.database.dir.path().join("admin-token");
    let base_url = app.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::common::petal_binary())
            .args(["demo", "--url", &base_url, "--size", "32", "--slices", "6", "--timeout-seconds", "240"])
            .arg("--token-file")
            .arg(&token_file)
            .output()
            .expect("run petal demo")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("WADO:") && stdout.contains("/dicomweb/studies/"), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("round: activated") || last.starts_with("round: rejected"), "{stdout}");
    assert!(last.contains("% closer to the truth") || last.contains("% further from the truth"), "{stdout}");
    app.stop().await;
}
