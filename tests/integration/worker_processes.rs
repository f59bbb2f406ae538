//! Jobs across real processes on one PostgreSQL and one blob directory: a worker killed with
//! SIGKILL mid-job leaves the job to another, two workers share ten series, each denoised
//! exactly once, and a learning round whose worker is killed ends with exactly one version.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use petal::science::model::config::DnCnnConfig;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{ChildGuard, Engine, TestDatabase, inference_env, petal_binary, pseudo_random_model};
use crate::fixtures::{SeriesSpec, multipart, multipart_type};
use crate::processes::{free_port, wait_until_ready};

/// Short timings, so orphaned jobs come back within seconds.
const FAST: [(&str, &str); 5] = [
    ("PETAL_JOB_POLL_INTERVAL", "200ms"),
    ("PETAL_JOB_LEASE", "3s"),
    ("PETAL_JOB_HEARTBEAT", "500ms"),
    ("PETAL_SERIES_QUIET_PERIOD", "1s"),
    ("PETAL_LOG", "info"),
];

fn spawn(database: &TestDatabase, args: &[&str], name: &str, base_model: Option<&Path>) -> ChildGuard {
    spawn_with_env(database, args, name, base_model, &[])
}

fn spawn_with_env(
    database: &TestDatabase,
    args: &[&str],
    name: &str,
    base_model: Option<&Path>,
    env: &[(&str, &str)],
) -> ChildGuard {
    let dir = database.dir.path();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    let mut command = Command::new(petal_binary());
    command
        .args(args)
        .args(["--database-url", &database.url])
        .args(["--blob-store", &dir.join("blobs").display().to_string()])
        .env_remove("DATABASE_URL")
        .env_remove("PETAL_DATABASE_URL")
        .envs(inference_env())
        .envs(FAST)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(model) = base_model {
        command.env("PETAL_BASE_MODEL", model);
    }
    ChildGuard(command.spawn().expect("start petal"))
}

struct Api {
    _process: ChildGuard,
    port: u16,
    token: String,
    client: reqwest::Client,
    /// Where the processes' logs are, to show them when a wait times out.
    logs: std::path::PathBuf,
}

/// The last lines of every process log, for a failure message.
fn log_tails(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let content = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            text += &format!("\n--- {} ---\n{}", path.display(), lines[lines.len().saturating_sub(15)..].join("\n"));
        }
    }
    text
}

impl Api {
    async fn start(database: &TestDatabase) -> Self {
        let port = free_port();
        let token_file = database.dir.path().join("api-admin-token");
        let process = spawn(
            database,
            &[
                "serve",
                "--no-worker",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--admin-token-file",
                &token_file.display().to_string(),
            ],
            "api",
            None,
        );
        let client = reqwest::Client::new();
        wait_until_ready(&client, port).await;
        let token = std::fs::read_to_string(&token_file).expect("token").trim().to_owned();
        Self { _process: process, port, token, client, logs: database.dir.path().to_owned() }
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json")
    }

    async fn store(&self, series: &SeriesSpec) {
        let response = self
            .client
            .post(format!("http://127.0.0.1:{}/dicomweb/studies", self.port))
            .bearer_auth(&self.token)
            .header("content-type", multipart_type())
            .body(multipart(&series.instances().expect("series")))
            .send()
            .await
            .expect("stow");
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn store_files(&self, parts: &[Vec<u8>]) {
        let response = self
            .client
            .post(format!("http://127.0.0.1:{}/dicomweb/studies", self.port))
            .bearer_auth(&self.token)
            .header("content-type", multipart_type())
            .body(multipart(parts))
            .send()
            .await
            .expect("stow");
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn wait_done(&self, series_uid: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let status = self.get(&format!("/api/v1/series/{series_uid}")).await;
            match status["state"].as_str() {
                Some("done") => return status,
                Some("failed") => panic!("denoising failed: {status}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "not denoised in time: {status}{}", log_tails(&self.logs));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The job once its worker has recorded the end: a handler's own results (a derived
    /// series, an activated round) are committed before the worker marks its job finished.
    async fn wait_job_finished(&self, job_id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let job = self.get(&format!("/api/v1/jobs/{job_id}")).await;
            if job["finished_ms"].is_i64() {
                return job;
            }
            assert!(Instant::now() < deadline, "the job never finished: {job}{}", log_tails(&self.logs));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_leaves_it_to_another_and_one_derived_series_results() {
    let database = TestDatabase::create(Engine::Postgres).await;
    // A full-width model on 128×128 slices makes the job last seconds, long enough to kill.
    let model_dir = database.dir.path().join("wide-model");
    pseudo_random_model(DnCnnConfig::scaled(1.0), 3).save(&model_dir, None, None).expect("model");
    let api = Api::start(&database).await;
    let first = spawn(&database, &["worker"], "worker-a", Some(&model_dir));
    let mut series = SeriesSpec::new(12);
    series.rows = 128;
    series.columns = 128;
    api.store(&series).await;

    let deadline = Instant::now() + Duration::from_secs(120);
    let running = loop {
        let jobs = api.get("/api/v1/jobs?kind=denoise&state=running").await;
        if let Some(job) = jobs["jobs"].as_array().and_then(|j| j.first()).cloned() {
            break job;
        }
        assert!(Instant::now() < deadline, "the denoise job never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(first); // SIGKILL
    let _second = spawn(&database, &["worker"], "worker-b", Some(&model_dir));

    let done = api.wait_done(&series.series_uid, Duration::from_secs(300)).await;
    let derived = done["derived_series"].as_array().expect("derived");
    assert_eq!(derived.len(), 1, "exactly one derived series: {done}");
    let job = api.get(&format!("/api/v1/jobs/{}", running["id"].as_str().expect("id"))).await;
    assert_eq!(job["state"], "succeeded");
    assert!(job["attempts"].as_i64() >= Some(2), "the job ran again after the kill: {job}");
    let in_study = api.get(&format!("/dicomweb/studies/{}/series", series.study_uid)).await;
    assert_eq!(in_study.as_array().map(Vec::len), Some(2), "the source and one derived series");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_denoise_each_of_ten_series_exactly_once() {
    let database = TestDatabase::create(Engine::Postgres).await;
    let api = Api::start(&database).await;
    let metrics_port = free_port();
    let metrics_address = format!("127.0.0.1:{metrics_port}");
    let _workers = [
        spawn(&database, &["worker", "--metrics-listen", &metrics_address], "worker-1", None),
        spawn(&database, &["worker"], "worker-2", None),
    ];
    let all: Vec<SeriesSpec> = (0..10).map(|_| SeriesSpec::new(3)).collect();
    for series in &all {
        api.store(series).await;
    }
    for series in &all {
        let done = api.wait_done(&series.series_uid, Duration::from_secs(180)).await;
        assert_eq!(done["derived_series"].as_array().map(Vec::len), Some(1), "{done}");
    }
    let jobs = api.get("/api/v1/jobs?kind=denoise").await;
    let jobs = jobs["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 10, "one job per series");
    for job in jobs {
        let job = api.wait_job_finished(job["id"].as_str().expect("id"), Duration::from_secs(30)).await;
        assert!(job["state"] == "succeeded" && job["attempts"] == 1, "{job}");
    }

    // A worker with --metrics-listen serves the queue's counts and its own job metrics.
    let metrics =
        reqwest::get(format!("http://{metrics_address}/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("petal_jobs{kind=\"denoise\",state=\"succeeded\"} 10"), "{metrics}");
    assert!(metrics.contains("petal_denoise_series_seconds_count"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_round_leaves_it_to_another_and_one_version_results() {
    let database = TestDatabase::create(Engine::Postgres).await;
    let dir = tempfile::tempdir().expect("dir");
    let study = crate::learning::study(dir.path(), 305, petal::science::simulation::ReconVersion::V1);
    let model = crate::learning::shipped_model();
    let api = Api::start(&database).await;
    // Long enough to be killed mid-way: a few hundred steps.
    let rounds = [
        ("PETAL_ROUND_DEFAULTS", r#"{"steps_per_pass": 150, "batch": 8, "patch": 16}"#),
        ("PETAL_ROUND_PROGRESS_INTERVAL", "100ms"),
    ];
    let spawn_worker = |name: &str| spawn_with_env(&database, &["worker"], name, Some(&model), &rounds);
    let first = spawn_worker("worker-a");
    for folder in ["n2n-half-a", "n2n-half-b"] {
        api.store_files(&crate::pipeline::series_files(&study.join(folder))).await;
    }
    let manifest = crate::pipeline::manifest(&study);
    let half = crate::pipeline::series_uid(&manifest, "n2n-half-a");
    let patient_key = api.get(&format!("/api/v1/series/{half}")).await["patient_key"].as_str().expect("key").to_owned();

    let deadline = Instant::now() + Duration::from_secs(120);
    let round_id = loop {
        let listed = api.get(&format!("/api/v1/patients/{patient_key}/rounds")).await;
        if let Some(round) = listed["rounds"].as_array().and_then(|r| r.first())
            && round["state"] == "running"
            && round["progress"]["step"].as_i64() >= Some(5)
        {
            break round["id"].as_i64().expect("id");
        }
        assert!(Instant::now() < deadline, "no round got going: {listed}{}", log_tails(&api.logs));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(first); // SIGKILL mid-round
    let models = api.get(&format!("/api/v1/patients/{patient_key}/models")).await;
    assert_eq!(models["versions"].as_array().map(Vec::len), Some(0), "nothing half-written: {models}");
    assert_eq!(models["active_version"], 0);
    let _second = spawn_worker("worker-b");

    let deadline = Instant::now() + Duration::from_secs(300);
    let round = loop {
        let round = api.get(&format!("/api/v1/rounds/{round_id}")).await;
        if !matches!(round["state"].as_str(), Some("queued" | "running")) {
            break round;
        }
        assert!(Instant::now() < deadline, "the round never finished: {round}{}", log_tails(&api.logs));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(matches!(round["state"].as_str(), Some("activated" | "rejected")), "{round}");
    let models = api.get(&format!("/api/v1/patients/{patient_key}/models")).await;
    let versions = models["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1, "exactly one version: {models}");
    assert_eq!(versions[0]["id"], round["version_id"]);
    let job = api.get(&format!("/api/v1/jobs/{}", round["job_id"].as_str().unwrap_or_default())).await;
    assert!(job["attempts"].as_i64() >= Some(2), "the job ran again after the kill: {job}");
}

/// Two API replicas and two workers on one PostgreSQL and one blob directory: a study posted
/// to the first API is read from the second, its series is denoised exactly once, and a
/// learning round and a denoise job run at the same time on different workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apis_and_two_workers_share_the_queue_and_a_round_overlaps_a_denoise() {
    let database = TestDatabase::create(Engine::Postgres).await;
    let dir = tempfile::tempdir().expect("dir");
    let study = crate::learning::study(dir.path(), 306, petal::science::simulation::ReconVersion::V1);
    let manifest = crate::pipeline::manifest(&study);
    let model = crate::learning::shipped_model();
    let first = Api::start(&database).await;
    let second = Api::start(&database).await;
    let rounds = [("PETAL_ROUND_DEFAULTS", r#"{"steps_per_pass": 150, "batch": 8, "patch": 16}"#)];
    let _workers = [
        spawn_with_env(&database, &["worker"], "worker-1", Some(&model), &rounds),
        spawn_with_env(&database, &["worker"], "worker-2", Some(&model), &rounds),
    ];

    // The halves start a round; the full-count series arrives while it trains.
    for folder in ["n2n-half-a", "n2n-half-b"] {
        first.store_files(&crate::pipeline::series_files(&study.join(folder))).await;
    }
    let half = crate::pipeline::series_uid(&manifest, "n2n-half-a");
    let patient_key =
        second.get(&format!("/api/v1/series/{half}")).await["patient_key"].as_str().expect("key").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let round_id = loop {
        let listed = second.get(&format!("/api/v1/patients/{patient_key}/rounds")).await;
        if let Some(round) = listed["rounds"].as_array().and_then(|r| r.first())
            && round["state"] == "running"
            && round["progress"]["step"].as_i64() >= Some(5)
        {
            break round["id"].as_i64().expect("id");
        }
        assert!(Instant::now() < deadline, "no round got going: {listed}{}", log_tails(&first.logs));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    first.store_files(&crate::pipeline::series_files(&study.join("full-count"))).await;
    let source = crate::pipeline::series_uid(&manifest, "full-count");
    let done = second.wait_done(&source, Duration::from_secs(300)).await;
    assert_eq!(done["derived_series"].as_array().map(Vec::len), Some(1), "{done}");
    let study_uid = manifest["study_uid"].as_str().expect("study");
    let series = second.get(&format!("/dicomweb/studies/{study_uid}/series")).await;
    assert_eq!(series.as_array().map(Vec::len), Some(4), "three posted and one derived series: {series}");

    let deadline = Instant::now() + Duration::from_secs(300);
    let round = loop {
        let round = second.get(&format!("/api/v1/rounds/{round_id}")).await;
        if !matches!(round["state"].as_str(), Some("queued" | "running")) {
            break round;
        }
        assert!(Instant::now() < deadline, "the round never finished: {round}{}", log_tails(&first.logs));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let jobs = second.get("/api/v1/jobs?kind=denoise").await;
    // One job from the series' completion (an activated round adds its own re-denoise).
    let denoises: Vec<&Value> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| {
            j["payload"].as_str().is_some_and(|p| p.contains(&source) && p.contains(r#""requested_by":"petal""#))
        })
        .collect();
    assert_eq!(denoises.len(), 1, "one denoise job for the series: {jobs}");
    let within = Duration::from_secs(30);
    let denoise = &second.wait_job_finished(denoises[0]["id"].as_str().expect("id"), within).await;
    assert_eq!(denoise["attempts"], 1, "{denoise}");
    let fine_tune = second.wait_job_finished(round["job_id"].as_str().expect("job"), within).await;
    let interval =
        |job: &Value| (job["started_ms"].as_i64().expect("start"), job["finished_ms"].as_i64().expect("end"));
    let ((d0, d1), (r0, r1)) = (interval(denoise), interval(&fine_tune));
    assert!(d0 < r1 && r0 < d1, "the denoise [{d0}, {d1}] and the round [{r0}, {r1}] overlap");
    assert_ne!(denoise["ran_by"], fine_tune["ran_by"], "on different workers: {denoise} {fine_tune}");
    assert!(denoise["ran_by"].is_string() && fine_tune["ran_by"].is_string());
}
