//! Inference through ONNX Runtime: `/readyz` reporting the engine and what is missing, and
//! the engine denoising whole volumes.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petal::inference::{InferenceEngine, InferenceError, InferenceSettings, Volume};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Engine, TestApp, TestDatabase, inference_env, ort_dylib_path, petal_binary, small_model};

async fn readyz(app: &TestApp) -> (StatusCode, Value) {
    let response = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    (response.status(), response.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_inference_ready_with_the_engine() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["inference"]["ok"], true, "{body}");
    let detail = body["inference"]["detail"].as_str().expect("detail");
    let base = small_model(1);
    assert!(detail.contains("ONNX Runtime 1.31.1"), "{detail}");
    assert!(detail.contains("on CPU"), "{detail}");
    assert!(detail.contains(&base.sha256[..12]), "the detail names the base model: {detail}");
    assert!(detail.contains("model version 1"), "the base model is registered: {detail}");

    // The registered version is a MODEL the CLI takes by id.
    let inspect = std::process::Command::new(crate::common::petal_binary())
        .args(["model", "inspect", "1", "--database-url", &app.database.url])
        .output()
        .expect("run petal model inspect");
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    assert!(String::from_utf8_lossy(&inspect.stdout).contains(&base.sha256), "inspect by id shows the weights' hash");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_only_server_is_ready_without_inference() {
    // No library and no model: an API-only process does not need them.
    let app = TestApp::spawn_with(
        Engine::Sqlite,
        &["--no-worker", "--ort-dylib-path", "/nonexistent/libonnxruntime.so", "--base-model", "/nonexistent/model"],
    )
    .await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["inference"]["ok"], true);
    assert!(body["inference"]["detail"].as_str().expect("detail").contains("not needed"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_when_the_base_model_is_missing() {
    let missing = tempfile::tempdir().expect("dir");
    let missing = missing.path().join("no-such-model");
    let app = TestApp::spawn_with(Engine::Sqlite, &["--base-model", missing.to_str().expect("UTF-8 path")]).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["database"]["ok"], true);
    assert_eq!(body["inference"]["ok"], false);
    let detail = body["inference"]["detail"].as_str().expect("detail");
    assert!(detail.contains(missing.to_str().expect("UTF-8 path")), "names the directory: {detail}");
    assert!(detail.contains("PETAL_BASE_MODEL"), "says how to fix it: {detail}");
    // Everything else keeps working.
    let health = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    app.stop().await;
}

/// The real binary with `ORT_DYLIB_PATH` naming a file that does not exist: it keeps
/// serving, and `/readyz` says what is missing and how to get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_when_the_onnx_runtime_library_is_missing() {
    let database = TestDatabase::create(Engine::Sqlite).await;
    let dir = database.dir.path();
    let missing = dir.join("runtime/libonnxruntime.so.1.31.1");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let log = std::fs::File::create(dir.join("server.log")).expect("log file");
    let mut child = Command::new(petal_binary())
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &database.url])
        .args(["--blob-store", &dir.join("blobs").display().to_string()])
        .args(["--admin-token-file", &dir.join("admin-token").display().to_string()])
        .env_remove("DATABASE_URL")
        .env_remove("PETAL_DATABASE_URL")
        .envs(inference_env())
        .env("ORT_DYLIB_PATH", &missing)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start petal serve");

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = loop {
        if let Ok(response) = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await {
            break response;
        }
        if Instant::now() > deadline || child.try_wait().expect("wait").is_some() {
            stop(&mut child);
            panic!("petal did not answer: {}", std::fs::read_to_string(dir.join("server.log")).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["database"]["ok"], true, "{body}");
    assert_eq!(body["inference"]["ok"], false, "{body}");
    let detail = body["inference"]["detail"].as_str().expect("detail");
    assert!(detail.contains(missing.to_str().expect("UTF-8 path")), "names the path: {detail}");
    assert!(detail.contains("scripts/setup") && detail.contains("ORT_DYLIB_PATH"), "says how to fix it: {detail}");
    let health = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), StatusCode::OK, "the process lives on");

    let status = stop(&mut child);
    assert!(status.success(), "petal exits 0 after SIGTERM: {status:?}");
    let log = std::fs::read_to_string(dir.join("server.log")).expect("log");
    assert!(log.contains("ERROR") && log.contains("ONNX Runtime library was not found"), "logged:\n{log}");
}

fn stop(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_engine(batch_windows: usize, session_cache: usize) -> InferenceEngine {
    let settings = InferenceSettings {
        ort_dylib_path: ort_dylib_path(),
        intra_threads: 1,
        batch_windows,
        session_cache,
        ..InferenceSettings::default()
    };
    InferenceEngine::start_onnx(&settings).expect("the engine starts (scripts/setup fetches ONNX Runtime)")
}

/// A smooth positive volume with some noise-like texture.
fn volume(depth: usize, height: usize, width: usize) -> Volume {
    let data = (0..depth * height * width)
        .map(|i| {
            let (z, y, x) = (i / (height * width), (i / width) % height, i % width);
            1.0 + 0.1 * z as f32 + ((x * 7 + y * 13 + z * 3) % 11) as f32 / 11.0
        })
        .collect();
    Volume::new(depth, height, width, data).expect("volume")
}

fn max_difference(a: &Volume, b: &Volume) -> f32 {
    a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denoise_volume_keeps_the_shape_and_gives_finite_values() {
    let engine = tokio::task::spawn_blocking(|| start_engine(2, 1)).await.expect("join");
    assert!(engine.description().contains("ONNX Runtime"), "{}", engine.description());
    let model = Arc::new(small_model(7));

    let input = volume(5, 24, 24);
    let output = engine.denoise_volume(model.clone(), input.clone()).await.expect("denoised");
    assert_eq!(output.shape(), [5, 24, 24]);
    assert!(output.data().iter().all(|v| v.is_finite()));
    assert!(max_difference(&input, &output) > 1e-4, "the network changes the volume");

    // One window per call gives the same volume as two per call.
    let one_by_one = tokio::task::spawn_blocking(|| start_engine(1, 1)).await.expect("join");
    let again = one_by_one.denoise_volume(model.clone(), input.clone()).await.expect("denoised");
    assert!(max_difference(&output, &again) < 1e-5, "batching does not change the result");

    // Depth 1 and 2: the edge slice is replicated into the whole window.
    let single = engine.denoise_volume(model.clone(), volume(1, 24, 24)).await.expect("depth 1");
    assert_eq!(single.shape(), [1, 24, 24]);
    assert!(single.data().iter().all(|v| v.is_finite()));
    let pair = engine.denoise_volume(model.clone(), volume(2, 16, 20)).await.expect("depth 2");
    assert_eq!(pair.shape(), [2, 16, 20], "in-plane size is free");

    // Another model evicts the first session (cache of one); coming back rebuilds it.
    let other = Arc::new(small_model(8));
    let other_output = engine.denoise_volume(other, input.clone()).await.expect("other model");
    assert!(max_difference(&output, &other_output) > 1e-4, "a different model gives a different result");
    let back = engine.denoise_volume(model.clone(), input.clone()).await.expect("first model again");
    assert!(max_difference(&output, &back) < 1e-6, "the same model gives the same result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_reports_a_missing_library() {
    let settings = InferenceSettings {
        ort_dylib_path: "/nonexistent/libonnxruntime.so.1.31.1".into(),
        ..InferenceSettings::default()
    };
    let err = InferenceEngine::start_onnx(&settings).expect_err("no library");
    assert!(matches!(err, InferenceError::LibraryMissing { .. }), "{err}");
}
