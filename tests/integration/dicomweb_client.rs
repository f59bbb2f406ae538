//! The real Python `dicomweb-client` against the real server: STOW → QIDO → WADO, with
//! pixels and headers compared in `tests/python/dicomweb_roundtrip.py`.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{Engine, TestApp};
use crate::on_both_engines;

/// The Python of the project's virtual environment (made by `scripts/setup`).
pub fn venv_python() -> PathBuf {
    let python = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"));
    assert!(python.exists(), "{} is missing: run scripts/setup first", python.display());
    python
}

async fn dicomweb_client_round_trip(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let base_url = app.base_url.clone();
    let token = app.admin_token.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(venv_python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/dicomweb_roundtrip.py"))
            .args(["--url", &base_url, "--token", &token])
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "dicomweb-client round trip failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("checks passed"), "{stdout}");
    app.stop().await;
}
on_both_engines!(dicomweb_client_round_trip);

async fn a_simulated_study_posted_by_dicomweb_client_gets_its_derived_series(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let dir = tempfile::tempdir().expect("dir");
    let study = crate::pipeline::simulated_study(dir.path(), 77);
    let (base_url, token) = (app.base_url.clone(), app.admin_token.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(venv_python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/dicomweb_simulated_study.py"))
            .args(["--url", &base_url, "--token", &token])
            .arg("--series")
            .arg(study.join("full-count"))
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("checks passed"), "{stdout}");
    app.stop().await;
}
on_both_engines!(a_simulated_study_posted_by_dicomweb_client_gets_its_derived_series);
