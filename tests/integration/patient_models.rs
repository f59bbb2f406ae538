//! A patient's active model version decides which model denoises their series: a version
//! activated by an admin is used (its DeviceUID lands in the derived series), activating
//! version 0 rolls back to the base model, and every activation is audited with its actor.

use petal::storage::models::{ModelSource, NewModelVersion};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Engine, TestApp, small_model};
use crate::on_both_engines;
use crate::pipeline::{manifest, series_files, series_uid, simulated_study, status, wait_for_state};
use crate::stow::stow;

async fn post(app: &TestApp, path: &str) -> (StatusCode, Value) {
    app.admin(reqwest::Method::POST, path, None).await
}

async fn get(app: &TestApp, path: &str) -> Value {
    app.admin_json(path).await
}

/// Re-runs the series and waits for the new derived series; returns its status.
async fn denoise_again(app: &TestApp, series: &str, previous: &str) -> Value {
    let (code, body) = post(app, &format!("/api/v1/series/{series}/denoise")).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    loop {
        let current = wait_for_state(app, series, &["done", "failed"]).await;
        if current["derived_series_uid"] != previous {
            return current;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn the_active_version_denoises_and_version_zero_rolls_back(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let dir = tempfile::tempdir().expect("dir");
    let study = simulated_study(dir.path(), 55);
    let manifest = manifest(&study);
    let (code, _, _) =
        stow(&app, &app.admin_token, "/dicomweb/studies", &series_files(&study.join("full-count"))).await;
    assert_eq!(code, StatusCode::OK);
    let source = series_uid(&manifest, "full-count");
    let first = wait_for_state(&app, &source, &["done"]).await;
    let base = first["model_version"].clone();
    let patient_key = first["patient_key"].as_str().expect("patient").to_owned();

    // A version of this patient's own (as a round would store it).
    let model = small_model(21);
    let config = serde_json::to_string(&model.config).expect("config");
    let weights = model.weights.to_safetensors().expect("weights");
    let base_id = base["id"].as_i64().map(petal::domain::ModelVersionId::from);
    let version = petal::storage::models::insert(
        &app.db,
        &NewModelVersion {
            name: "round 1",
            source: ModelSource::Round,
            sha256: &model.sha256,
            config: &config,
            weights: &weights,
            parent_id: base_id,
            patient_key: Some(&petal::domain::PatientKey::from(patient_key.clone())),
            report: Some("{}"),
            created_by: Some("test"),
        },
    )
    .await
    .expect("version");

    let listed = get(&app, &format!("/api/v1/patients/{patient_key}/models")).await;
    assert_eq!(listed["active_version"], 0, "{listed}");
    assert_eq!(listed["base"]["id"].as_i64(), base_id.map(petal::domain::ModelVersionId::get));
    assert_eq!(listed["versions"][0]["id"], version.id.get());

    let (code, body) = post(&app, &format!("/api/v1/patients/{patient_key}/models/{}/activate", version.id)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(get(&app, &format!("/api/v1/patients/{patient_key}/models")).await["active_version"], version.id.get());
    let with_version = denoise_again(&app, &source, first["derived_series_uid"].as_str().expect("first")).await;
    assert_eq!(with_version["model_version"]["id"], version.id.get());
    assert_eq!(with_version["model_version"]["device_uid"], version.device_uid.as_str());

    // Rollback: version 0 is the base model again.
    let (code, _) = post(&app, &format!("/api/v1/patients/{patient_key}/models/0/activate")).await;
    assert_eq!(code, StatusCode::OK);
    let rolled_back = denoise_again(&app, &source, with_version["derived_series_uid"].as_str().expect("second")).await;
    assert_eq!(rolled_back["model_version"], base, "the base model denoises after the rollback");

    // Refusals say why; every activation is in the audit trail with who did it.
    let (code, _) = post(&app, &format!("/api/v1/patients/{patient_key}/models/999999/activate")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = post(&app, "/api/v1/patients/no-such-patient/models/0/activate").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let audit = get(&app, &format!("/api/v1/audit?action=model.activate&patient_key={patient_key}")).await;
    let events = audit["events"].as_array().expect("events");
    let successes: Vec<&Value> = events.iter().filter(|e| e["outcome"] == "success").collect();
    assert_eq!(successes.len(), 2, "{events:?}");
    assert!(successes.iter().all(|e| e["actor"].as_str().is_some_and(|a| !a.is_empty())), "{events:?}");
    let current = status(&app, &source).await;
    assert_eq!(current["derived_series"].as_array().map(Vec::len), Some(3));
    app.stop().await;
}
on_both_engines!(the_active_version_denoises_and_version_zero_rolls_back);
