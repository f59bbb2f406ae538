//! Interoperability with real DICOM software: Orthanc 1.10 (Debian) pushing STOW-RS with
//! its own DICOMweb client, and dcmtk's dcmdump reading every file petal returns.
//! Both come from Debian packages that `scripts/setup` installs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Engine, TestApp};
use crate::fixtures::{SeriesSpec, real_pet_files};
use crate::on_both_engines;
use crate::processes::free_port;
use crate::stow::{indexed, stow};

const ORTHANC: &str = "/usr/sbin/Orthanc";
const DICOMWEB_PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// An Orthanc on loopback whose DICOMweb plugin knows petal as server `petal`, and, when
/// petal listens for DIMSE, whose modality `petal` is petal's C-STORE SCP (Orthanc calls
/// as `ORTHANC`).
pub(crate) struct Orthanc {
    child: Child,
    pub(crate) url: String,
    /// Orthanc's own DICOM port (its C-STORE SCP, when petal's DIMSE port was given).
    pub(crate) dicom_port: u16,
}

impl Orthanc {
    pub(crate) async fn start(dir: &Path, petal_url: &str, token: &str) -> Self {
        Self::start_with_dimse(dir, petal_url, token, None).await
    }

    pub(crate) async fn start_with_dimse(
        dir: &Path,
        petal_url: &str,
        token: &str,
        petal_dimse_port: Option<u16>,
    ) -> Self {
        std::fs::create_dir_all(dir).expect("Orthanc's directory");
        assert!(
            Path::new(ORTHANC).exists() && Path::new(DICOMWEB_PLUGIN).exists(),
            "run scripts/setup: Orthanc is missing"
        );
        let http_port = free_port();
        let dicom_port = free_port();
        let config = json!({
            "Name": "petal-interop",
            "StorageDirectory": dir.join("orthanc-db"),
            "IndexDirectory": dir.join("orthanc-db"),
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "DicomServerEnabled": petal_dimse_port.is_some(),
            "DicomAet": "ORTHANC",
            "DicomModalities": petal_dimse_port.map(|port| json!({ "petal": ["PETAL", "127.0.0.1", port] })).unwrap_or(json!({})),
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {
                "Enable": true,
                "Root": "/dicom-web/",
                "Servers": {
                    "petal": { "Url": format!("{petal_url}/dicomweb/"), "HttpHeaders": { "Authorization": format!("Bearer {token}") } }
                }
            }
        });
        let config_path = dir.join("orthanc.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).expect("json")).expect("write config");
        let log = std::fs::File::create(dir.join("orthanc.log")).expect("log");
        let child =
            Command::new(ORTHANC).arg(&config_path).stdout(Stdio::null()).stderr(log).spawn().expect("start Orthanc");
        let url = format!("http://127.0.0.1:{http_port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client.get(format!("{url}/system")).send().await.is_ok_and(|r| r.status().is_success()) {
            assert!(Instant::now() < deadline, "Orthanc did not start; see {}", dir.join("orthanc.log").display());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Orthanc { child, url, dicom_port }
    }
}

impl Orthanc {
    /// Whether Orthanc holds a series with this SeriesInstanceUID.
    pub(crate) async fn has_series(&self, series_uid: &str) -> bool {
        let found: Value = reqwest::Client::new()
            .post(format!("{}/tools/lookup", self.url))
            .body(series_uid.to_owned())
            .send()
            .await
            .expect("Orthanc lookup")
            .json()
            .await
            .unwrap_or(Value::Null);
        found.as_array().is_some_and(|hits| hits.iter().any(|hit| hit["Type"] == "Series"))
    }

    /// Uploads every slice of `series` through Orthanc's REST API; Orthanc's id of its study.
    pub(crate) async fn upload(&self, series: &SeriesSpec) -> String {
        let client = reqwest::Client::new();
        let mut study_id = String::new();
        for instance in series.instances().expect("synthetic series") {
            let stored: Value = client
                .post(format!("{}/instances", self.url))
                .body(instance)
                .send()
                .await
                .expect("upload to Orthanc")
                .json()
                .await
                .expect("json");
            study_id = stored["ParentStudy"].as_str().expect("study id").to_owned();
        }
        study_id
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Orthanc receives a series and pushes it to petal with its own STOW-RS client: Orthanc
/// reports success only when petal's ReferencedSOPSequence lists every instance.
async fn orthanc_pushes_a_series_over_stow(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let pacs = app.token(petal::domain::Role::Pacs).await;
    let orthanc = Orthanc::start(app.database.dir.path(), &app.base_url, &pacs).await;
    let client = reqwest::Client::new();
    let series = SeriesSpec::new(6);
    let study_id = orthanc.upload(&series).await;
    let push = client
        .post(format!("{}/dicom-web/servers/petal/stow", orthanc.url))
        .json(&json!({ "Resources": [study_id], "Synchronous": true }))
        .send()
        .await
        .expect("Orthanc STOW");
    let status = push.status();
    let text = push.text().await.unwrap_or_default();
    assert!(status.is_success(), "Orthanc reports the push failed ({status}): {text}");
    let stored = indexed(&app.db).await;
    assert_eq!(stored.len(), 6, "every instance Orthanc pushed is indexed");
    app.stop().await;
}
on_both_engines!(orthanc_pushes_a_series_over_stow);

/// Splits a multipart/related body into its parts' bodies.
fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<Vec<u8>> {
    let boundary = content_type.split("boundary=").nth(1).expect("boundary").trim_matches('"').to_owned();
    let delimiter = format!("--{boundary}");
    let text_positions: Vec<usize> =
        body.windows(delimiter.len()).enumerate().filter(|(_, w)| *w == delimiter.as_bytes()).map(|(i, _)| i).collect();
    text_positions
        .windows(2)
        .map(|pair| {
            let part = &body[pair[0] + delimiter.len()..pair[1] - 2];
            let start = part.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end") + 4;
            part[start..].to_vec()
        })
        .collect()
}

/// Every file petal returns (WADO-RS series and instance retrieves, both real and
/// synthetic data) is read by dcmtk's dcmdump without complaint.
async fn dcmdump_reads_every_returned_file(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let series = SeriesSpec::new(3);
    let (status, _, _) =
        stow(&app, &app.admin_token, "/dicomweb/studies", &series.instances().expect("synthetic series")).await;
    assert_eq!(status, StatusCode::OK);
    let mut urls = vec![app.url(&format!("/dicomweb/studies/{}/series/{}", series.study_uid, series.series_uid))];
    for file in real_pet_files() {
        let (status, body, _) =
            stow(&app, &app.admin_token, "/dicomweb/studies", &[std::fs::read(file).expect("read")]).await;
        assert_eq!(status, StatusCode::OK);
        urls.push(crate::stow::referenced(&body)[0]["00081190"]["Value"][0].as_str().expect("url").to_owned());
    }
    let dir = app.database.dir.path().join("returned");
    std::fs::create_dir_all(&dir).expect("dir");
    let mut checked = 0;
    for url in urls {
        let response = app.client.get(&url).bearer_auth(&app.admin_token).send().await.expect("WADO");
        let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
        let body = response.bytes().await.expect("body");
        for part in multipart_parts(&content_type, &body) {
            let path = dir.join(format!("{checked}.dcm"));
            std::fs::write(&path, &part).expect("write");
            let output =
                Command::new("dcmdump").arg(&path).output().expect("run dcmdump (scripts/setup installs dcmtk)");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success() && !stderr.contains("E:"), "dcmdump {}: {stderr}", path.display());
            checked += 1;
        }
    }
    assert_eq!(checked, 5);
    app.stop().await;
}
on_both_engines!(dcmdump_reads_every_returned_file);

/// Orthanc, as the hospital PACS, sends a study to petal by C-STORE
/// (`POST /modalities/petal/store`): Orthanc reports success only when petal answered
/// success for every instance, and petal denoises the series as if it came by STOW-RS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orthanc_sends_a_study_by_cstore() {
    let flags =
        ["--dimse-listen", "127.0.0.1:0", "--dimse-calling-aes", "ORTHANC@127.0.0.1", "--series-quiet-period", "2s"];
    let app = TestApp::spawn_with(crate::common::Engine::Sqlite, &flags).await;
    let dimse_port = app.dimse_port.expect("DIMSE is on");
    let orthanc = Orthanc::start_with_dimse(app.database.dir.path(), &app.base_url, "unused", Some(dimse_port)).await;
    let client = reqwest::Client::new();
    let series = SeriesSpec::new(4);
    let study_id = orthanc.upload(&series).await;
    let push = client
        .post(format!("{}/modalities/petal/store", orthanc.url))
        .json(&json!({ "Resources": [study_id], "Synchronous": true }))
        .send()
        .await
        .expect("Orthanc C-STORE");
    let status = push.status();
    let text = push.text().await.unwrap_or_default();
    assert!(status.is_success(), "Orthanc reports the C-STORE failed ({status}): {text}");
    let stored = indexed(&app.db).await;
    assert_eq!(stored.len(), 4, "every instance Orthanc sent is indexed");
    let state = crate::pipeline::wait_for_state(&app, &series.series_uid, &["done", "failed"]).await;
    assert_eq!(state["state"], "done", "{state}");
    app.stop().await;
}
