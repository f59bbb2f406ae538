//! Test harness: fresh databases, a running server (with its embedded worker and a working
//! inference engine), tokens of each role, and a small base model.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::Parser;
use petal::Application;
use petal::app::config::{Cli, Command};
use petal::domain::Role;
use petal::science::model::config::DnCnnConfig;
use petal::science::model::directory::StoredModel;
use petal::storage::Database;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The PostgreSQL server the tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("PETAL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per database engine, as two named tests.
#[macro_export]
macro_rules! on_both_engines {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Engine::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Engine::Postgres).await
            }
        }
    };
}

/// A fresh, empty database of one engine; a PostgreSQL database is dropped afterwards.
pub struct TestDatabase {
    pub url: String,
    pub dir: TempDir,
    postgres_name: Option<String>,
}

impl TestDatabase {
    pub async fn create(engine: Engine) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match engine {
            Engine::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("petal.db").display());
                TestDatabase { url, dir, postgres_name: None }
            }
            Engine::Postgres => {
                let name = format!("petal_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&postgres_admin_url())
                    .await
                    .expect("PostgreSQL must be running for the tests");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create database");
                admin.close().await;
                let base = postgres_admin_url();
                let url = format!("{}/{name}", base.rsplit_once('/').expect("URL has a database").0);
                TestDatabase { url, dir, postgres_name: Some(name) }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else { return };
        // Drop runs outside async context guarantees; use a short-lived runtime on a thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&postgres_admin_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&admin)
                        .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A running petal server with its own database and data directory.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub db: Database,
    pub database: TestDatabase,
    /// The DIMSE listener's port, when the server was started with `--dimse-listen`.
    pub dimse_port: Option<u16>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> Self {
        Self::spawn_with(engine, &[]).await
    }

    /// Starts a server with extra `petal serve` flags. Unless they say otherwise, it runs its
    /// embedded worker with the ONNX Runtime library `scripts/setup` fetched, the small test
    /// base model and one inference thread.
    pub async fn spawn_with(engine: Engine, extra_args: &[&str]) -> Self {
        let database = TestDatabase::create(engine).await;
        let url = database.url.clone();
        Self::spawn_on(database, &url, extra_args).await
    }

    /// Starts a server on `database`, reached at `server_url` (the same database through a
    /// proxy, say); the test's own connection (`db`) goes to the database directly.
    pub async fn spawn_on(database: TestDatabase, server_url: &str, extra_args: &[&str]) -> Self {
        let data = database.dir.path();
        let token_file: PathBuf = data.join("admin-token");
        let mut args: Vec<String> = vec![
            "petal".into(),
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--database-url".into(),
            server_url.to_owned(),
            "--blob-store".into(),
            data.join("blobs").display().to_string(),
            "--admin-token-file".into(),
            token_file.display().to_string(),
        ];
        let defaults = [
            ("--ort-dylib-path", ort_dylib_path().display().to_string()),
            ("--base-model", base_model_dir().display().to_string()),
            ("--inference-threads", "1".to_owned()),
        ];
        for (flag, value) in defaults {
            if !extra_args.contains(&flag) {
                args.extend([flag.to_owned(), value]);
            }
        }
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let Command::Serve(serve) = Cli::try_parse_from(args).expect("valid serve flags").command else {
            unreachable!("parsed a serve command")
        };
        let app = Application::build(serve).await.expect("server builds");
        let base_url = format!("http://127.0.0.1:{}", app.port());
        let dimse_port = app.dimse_port();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let admin_token = std::fs::read_to_string(&token_file).unwrap_or_default().trim().to_owned();
        let db = Database::connect(&database.url, 2).await.expect("test connection");
        TestApp {
            base_url,
            client: reqwest::Client::new(),
            admin_token,
            db,
            database,
            dimse_port,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// GET `path` as the bootstrap admin; the JSON body of a 200.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let response = self.client.get(self.url(path)).bearer_auth(&self.admin_token).send().await.expect("GET");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "GET {path}");
        response.json().await.expect("JSON body")
    }

    /// `method path` as the bearer of `token`, with an optional JSON body: the status and
    /// the JSON answer (`Null` when the body is empty or not JSON).
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self.client.request(method.clone(), self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// [`Self::call`] as the bootstrap admin.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(&self.admin_token, method, path, body).await
    }

    /// A new token of `role`, made through the storage layer (not the API under test).
    pub async fn token(&self, role: Role) -> String {
        petal::auth::issue_token(&self.db, &format!("test-{role}"), role, None, "test").await.expect("token").secret
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server stopped cleanly");
        }
        self.db.close().await;
    }
}

/// Path of the `petal` binary built for these tests.
pub fn petal_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_petal"))
}

/// Environment for a `petal serve` or `petal worker` process started by a test: the ONNX
/// Runtime library, the small base model, one inference thread (as [`TestApp`] has).
pub fn inference_env() -> Vec<(&'static str, std::ffi::OsString)> {
    vec![
        ("ORT_DYLIB_PATH", ort_dylib_path().into_os_string()),
        ("PETAL_BASE_MODEL", base_model_dir().as_os_str().to_owned()),
        ("PETAL_INFERENCE_THREADS", "1".into()),
    ]
}

/// The ONNX Runtime library `scripts/setup` fetches (`scripts/test` runs it first).
pub fn ort_dylib_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(petal::inference::DEFAULT_ORT_DYLIB_PATH)
}

/// The small test model (width 0.25) with deterministic pseudo-random weights: conv kernels
/// uniform in ±1/√fan-in, small biases, BatchNorm γ near 1, running variances in [0.5, 1.5).
pub fn small_model(seed: u64) -> StoredModel {
    pseudo_random_model(DnCnnConfig::scaled(0.25), seed)
}

/// A model of any width with the deterministic pseudo-random weights of [`small_model`].
pub fn pseudo_random_model(config: DnCnnConfig, seed: u64) -> StoredModel {
    petal::science::model::pseudo_random::pseudo_random_model(config, seed)
        .expect("the pseudo-random test model fits its config")
}

/// A base model directory holding [`small_model`]`(1)`, written once per test run.
pub fn base_model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("petal-test-base-model");
        let model = small_model(1);
        if StoredModel::load(&dir).ok().as_ref() != Some(&model) {
            model
                .save(&dir, None, Some("Small pseudo-random test model (width 0.25).\n"))
                .expect("write the base model");
        }
        dir
    })
}

/// The error lines dicom3tools' dciodvfy prints for a file.
pub fn dciodvfy_errors(path: &Path) -> Vec<String> {
    let output = std::process::Command::new("dciodvfy")
        .arg(path)
        .output()
        .expect("run dciodvfy (scripts/setup installs dicom3tools)");
    let text = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    text.lines().filter(|l| l.starts_with("Error")).map(str::to_owned).collect()
}

/// A child process that is killed when dropped, so a failing test leaves no `petal` behind.
pub struct ChildGuard(pub std::process::Child);

impl std::ops::Deref for ChildGuard {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
