//! Forwarding derived series to the hospital's PACS, with real peers: Orthanc 1.10 as the
//! PACS (by DIMSE and by its DICOMweb plugin) and dcmtk's storescp as a destination that is
//! down, comes up, or refuses. Also the destinations API: admin only, audited, no secrets.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use petal::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ChildGuard, Engine, TestApp};
use crate::fixtures::SeriesSpec;
use crate::interop::Orthanc;
use crate::processes::free_port;
use crate::stow::stow;

/// Quick retries, and series complete soon after their last instance.
const FAST: [&str; 4] = ["--series-quiet-period", "2s", "--forward-backoff", "1s"];

async fn create(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.admin(Method::POST, "/api/v1/destinations", Some(&body)).await
}

/// Stores `series` by STOW-RS and waits until it is denoised; its current derived series.
async fn denoised(app: &TestApp, series: &SeriesSpec) -> String {
    let pacs = app.token(Role::Pacs).await;
    let (status, body, _) = stow(app, &pacs, "/dicomweb/studies", &series.instances().expect("series")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let state = crate::pipeline::wait_for_state(app, &series.series_uid, &["done", "failed"]).await;
    assert_eq!(state["state"], "done", "{state}");
    state["derived_series_uid"].as_str().expect("derived series").to_owned()
}

/// Polls the series until its forward to `destination` is in one of `states`.
async fn wait_forward(app: &TestApp, series_uid: &str, destination: &str, states: &[&str], within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let status = app.admin_json(&format!("/api/v1/series/{series_uid}")).await;
        let forward = status["forwards"]
            .as_array()
            .and_then(|all| all.iter().find(|f| f["destination"] == destination).cloned())
            .unwrap_or(Value::Null);
        if states.iter().any(|s| forward["state"] == *s) {
            return forward;
        }
        assert!(Instant::now() < deadline, "forward to {destination} never reached {states:?}: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_are_admin_only_audited_and_hold_no_secrets() {
    let app = TestApp::spawn_with(Engine::Sqlite, &["--no-worker"]).await;
    let dimse = json!({"name": "pacs", "kind": "dimse", "ae_title": "ORTHANC", "host": "127.0.0.1", "port": 4242, "forward": ["derived"]});
    let (status, body) = create(&app, dimse.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, dimse);
    assert_eq!(create(&app, dimse).await.0, StatusCode::CONFLICT, "a name is taken once");

    let secret_file = app.database.dir.path().join("pacs-token");
    std::fs::write(&secret_file, "s3cr3t-bearer\n").expect("secret file");
    let web = json!({"name": "web-pacs", "kind": "dicomweb", "url": "https://pacs.example/dicom-web",
                     "auth": {"bearer_file": secret_file}, "forward": ["derived", "source"]});
    let (status, body) = create(&app, web).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let missing = json!({"name": "x", "kind": "dicomweb", "url": "https://pacs/dicom-web",
                         "auth": {"bearer_file": "/nonexistent/token"}, "forward": ["derived"]});
    let (status, body) = create(&app, missing).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an unreadable secret file is named: {body}");
    let inline = json!({"name": "y", "kind": "dicomweb", "url": "https://pacs/dicom-web", "password": "hunter2", "forward": ["derived"]});
    let (status, body) = create(&app, inline).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a secret in the body is refused: {body}");
    let bad_port =
        json!({"name": "z", "kind": "dimse", "ae_title": "A", "host": "h", "port": 0, "forward": ["derived"]});
    assert_eq!(create(&app, bad_port).await.0, StatusCode::BAD_REQUEST);

    let (status, listed) = app.admin(Method::GET, "/api/v1/destinations", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert!(!listed.to_string().contains("s3cr3t"), "the secret itself is never returned");

    let radiologist = app.token(Role::Radiologist).await;
    let (status, _) = app.call(&radiologist, Method::GET, "/api/v1/destinations", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    assert_eq!(app.admin(Method::DELETE, "/api/v1/destinations/pacs", None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.admin(Method::DELETE, "/api/v1/destinations/pacs", None).await.0, StatusCode::NOT_FOUND);
    let (_, audit) = app.admin(Method::GET, "/api/v1/audit?action=destination.create", None).await;
    assert!(audit.to_string().contains("/api/v1/destinations/web-pacs"), "{audit}");
    app.stop().await;
}

/// Orthanc as the hospital PACS: it sends a study to petal by C-STORE, and petal forwards
/// the derived series back to it by DIMSE with no request in between; a second Orthanc
/// receives it through its DICOMweb plugin. Echo reaches both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pacs_gets_the_derived_series_back_by_dimse_and_by_dicomweb() {
    let mut flags = vec!["--dimse-listen", "127.0.0.1:0", "--dimse-calling-aes", "ORTHANC@127.0.0.1"];
    flags.extend(FAST);
    let app = TestApp::spawn_with(Engine::Sqlite, &flags).await;
    let dir = app.database.dir.path();
    let pacs = Orthanc::start_with_dimse(&dir.join("pacs"), &app.base_url, "unused", app.dimse_port).await;
    let web_pacs = Orthanc::start(&dir.join("web-pacs"), &app.base_url, "unused").await;
    let by_dimse = json!({"name": "pacs", "kind": "dimse", "ae_title": "ORTHANC", "host": "127.0.0.1",
                          "port": pacs.dicom_port, "forward": ["derived"]});
    let by_web = json!({"name": "web-pacs", "kind": "dicomweb", "url": format!("{}/dicom-web", web_pacs.url),
                        "auth": null, "forward": ["derived"]});
    for destination in [by_dimse, by_web] {
        let (status, body) = create(&app, destination).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for name in ["pacs", "web-pacs"] {
        let (status, echo) = app.admin(Method::POST, &format!("/api/v1/destinations/{name}/echo"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echo["ok"], true, "{name}: {echo}");
    }

    let series = SeriesSpec::new(32);
    let study = pacs.upload(&series).await;
    let push = reqwest::Client::new()
        .post(format!("{}/modalities/petal/store", pacs.url))
        .json(&json!({ "Resources": [study], "Synchronous": true }))
        .send()
        .await
        .expect("Orthanc C-STORE");
    assert!(
        push.status().is_success(),
        "Orthanc reports the C-STORE failed: {}",
        push.text().await.unwrap_or_default()
    );

    let state = crate::pipeline::wait_for_state(&app, &series.series_uid, &["done", "failed"]).await;
    let derived = state["derived_series_uid"].as_str().expect("derived series").to_owned();
    let completed_ms = state["completed_ms"].as_i64().expect("completion time");
    for name in ["pacs", "web-pacs"] {
        let forward = wait_forward(&app, &series.series_uid, name, &["sent", "failed"], Duration::from_secs(60)).await;
        assert_eq!(forward["state"], "sent", "{name}: {forward}");
        assert_eq!(forward["series_uid"], derived.as_str());
        let after_ms = forward["sent_ms"].as_i64().expect("sent time") - completed_ms;
        assert!(after_ms < 60_000, "{name}: the 32-slice result is back {after_ms} ms after the series was complete");
    }
    assert!(pacs.has_series(&derived).await, "the PACS holds the derived series (DIMSE)");
    assert!(web_pacs.has_series(&derived).await, "the second PACS holds it (DICOMweb)");
    app.stop().await;
}

/// A storescp that logs every C-STORE it receives, as DEST on `port`.
fn storescp(dir: &Path, port: u16, extra: &[&str]) -> ChildGuard {
    let tool = Path::new("/usr/bin/storescp");
    assert!(tool.exists(), "storescp is missing: run scripts/setup (Debian package dcmtk)");
    let received = dir.join("received");
    std::fs::create_dir_all(&received).expect("storescp dir");
    let log = std::fs::File::create(dir.join("storescp.log")).expect("log");
    let child = Command::new(tool)
        .args(["-v", "-aet", "DEST", "-od"])
        .arg(&received)
        .args(extra)
        .arg(port.to_string())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start storescp");
    ChildGuard(child)
}

/// C-STORE requests storescp received, from its log.
fn stores_received(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("storescp.log")).unwrap_or_default().matches("Received Store Request").count()
}

/// The destination is down: the forward is retried with the backoff; once it comes up the
/// derived series arrives within 30 s, and exactly once (counted by the C-STOREs storescp
/// received).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_comes_up_gets_the_series_exactly_once() {
    let app = TestApp::spawn_with(Engine::Sqlite, &FAST).await;
    let port = free_port();
    let destination = json!({"name": "late", "kind": "dimse", "ae_title": "DEST", "host": "127.0.0.1", "port": port, "forward": ["derived"]});
    assert_eq!(create(&app, destination).await.0, StatusCode::CREATED);
    let series = SeriesSpec::new(3);
    denoised(&app, &series).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let forward =
            wait_forward(&app, &series.series_uid, "late", &["queued", "sending"], Duration::from_secs(30)).await;
        if forward["attempts"].as_i64().unwrap_or(0) >= 2 && forward["last_error"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "the forward is not being retried: {forward}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let dir = app.database.dir.path().join("late");
    let _receiver = storescp(&dir, port, &[]);
    let up = Instant::now();
    let forward = wait_forward(&app, &series.series_uid, "late", &["sent", "failed"], Duration::from_secs(30)).await;
    assert_eq!(forward["state"], "sent", "{forward}");
    assert!(up.elapsed() < Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stores_received(&dir), series.slices, "every derived instance arrives exactly once");
    app.stop().await;
}

/// A destination that refuses the association: the forward fails at once, not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_fails_without_retries() {
    let app = TestApp::spawn_with(Engine::Sqlite, &FAST).await;
    let port = free_port();
    let dir = app.database.dir.path().join("refusing");
    let _receiver = storescp(&dir, port, &["--refuse"]);
    let destination = json!({"name": "refusing", "kind": "dimse", "ae_title": "DEST", "host": "127.0.0.1", "port": port, "forward": ["derived"]});
    assert_eq!(create(&app, destination).await.0, StatusCode::CREATED);
    let series = SeriesSpec::new(3);
    denoised(&app, &series).await;
    let forward =
        wait_forward(&app, &series.series_uid, "refusing", &["failed", "sent"], Duration::from_secs(30)).await;
    assert_eq!(forward["state"], "failed", "{forward}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let forward = wait_forward(&app, &series.series_uid, "refusing", &["failed"], Duration::from_secs(1)).await;
    assert_eq!(forward["attempts"], 1, "a refusal is not retried: {forward}");
    assert!(forward["last_error"].as_str().unwrap_or_default().contains("rejected"), "{forward}");
    assert_eq!(stores_received(&dir), 0);
    app.stop().await;
}
