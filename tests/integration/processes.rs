//! The real `petal` binary as separate processes: replicas starting together, graceful
//! shutdown on SIGTERM during a slow upload, and `petal healthcheck`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;

use crate::common::{ChildGuard, Engine, TestDatabase, inference_env, petal_binary};
use crate::fixtures::{SeriesSpec, multipart, multipart_type};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Starts `petal serve` on `port` with its own token file, logging to a file in `dir`.
fn spawn_server(database: &TestDatabase, port: u16, name: &str) -> ChildGuard {
    let dir = database.dir.path();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    Command::new(petal_binary())
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &database.url])
        .args(["--blob-store", &dir.join("blobs").display().to_string()])
        .args(["--admin-token-file", &dir.join(format!("{name}-admin-token")).display().to_string()])
        .env_remove("DATABASE_URL")
        .env_remove("PETAL_DATABASE_URL")
        .envs(inference_env())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(ChildGuard)
        .expect("start petal serve")
}

pub async fn wait_until_ready(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await;
        if response.is_ok_and(|r| r.status() == StatusCode::OK) {
            return;
        }
        assert!(Instant::now() < deadline, "petal on port {port} did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "petal did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_a_fresh_postgres_migrate_once_and_make_one_admin_token() {
    let database = TestDatabase::create(Engine::Postgres).await;
    let client = reqwest::Client::new();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut children: Vec<ChildGuard> =
        ports.iter().enumerate().map(|(i, port)| spawn_server(&database, *port, &format!("replica{i}"))).collect();
    for port in &ports {
        wait_until_ready(&client, *port).await;
    }

    let pool = sqlx::PgPool::connect(&database.url).await.expect("connect");
    let (migrations, failed): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE NOT success) FROM _sqlx_migrations")
            .fetch_one(&pool)
            .await
            .expect("count");
    let on_disk =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).expect("dir").count() as i64;
    assert_eq!((migrations, failed), (on_disk, 0), "each migration applied exactly once");
    pool.close().await;
    let db = petal::storage::Database::connect(&database.url, 2).await.expect("connect");
    let tokens = petal::storage::tokens::list(&db).await.expect("tokens");
    let admins = tokens.iter().filter(|t| t.role == petal::domain::Role::Admin).count();
    assert_eq!(admins, 1, "replicas starting together create one admin token");
    db.close().await;

    let written: Vec<String> = (0..3)
        .filter_map(|i| std::fs::read_to_string(database.dir.path().join(format!("replica{i}-admin-token"))).ok())
        .collect();
    assert_eq!(written.len(), 1, "only the replica that created the token wrote it");
    for port in &ports {
        let response = client
            .get(format!("http://127.0.0.1:{port}/api/v1/whoami"))
            .bearer_auth(written[0].trim())
            .send()
            .await
            .expect("whoami");
        assert_eq!(response.status(), StatusCode::OK, "the token works on every replica");
    }
    for child in &children {
        terminate(child);
    }
    for child in &mut children {
        assert!(wait_for_exit(child).success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_upload_lets_it_finish_and_exits_zero() {
    let database = TestDatabase::create(Engine::Sqlite).await;
    let port = free_port();
    let mut child = spawn_server(&database, port, "server");
    let client = reqwest::Client::new();
    wait_until_ready(&client, port).await;
    let token = std::fs::read_to_string(database.dir.path().join("server-admin-token")).expect("token file");

    // A STOW-RS upload of a 20-slice series trickles in over about two seconds;
    // SIGTERM arrives in the middle.
    let series = SeriesSpec::new(20);
    let body = multipart(&series.instances().expect("synthetic series"));
    let chunks: Vec<Vec<u8>> = body.chunks(body.len() / 16 + 1).map(<[u8]>::to_vec).collect();
    let stream = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(125)).await;
        Ok::<_, std::io::Error>(chunk)
    });
    let upload = tokio::spawn(
        client
            .post(format!("http://127.0.0.1:{port}/dicomweb/studies"))
            .bearer_auth(token.trim())
            .header("content-type", multipart_type())
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&child);
    let response = upload.await.expect("task").expect("the in-flight request completes");
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("DICOM JSON");
    assert_eq!(crate::stow::referenced(&body).len(), 20, "every instance of the upload was stored");
    let status = tokio::task::spawn_blocking(move || wait_for_exit(&mut child)).await.expect("join");
    assert!(status.success(), "petal exits 0 after SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exit_code_follows_healthz() {
    let database = TestDatabase::create(Engine::Sqlite).await;
    let port = free_port();
    let mut child = spawn_server(&database, port, "server");
    wait_until_ready(&reqwest::Client::new(), port).await;
    let check = |port: u16| {
        Command::new(petal_binary())
            .args(["healthcheck", "--listen", &format!("0.0.0.0:{port}"), "--timeout", "3s"])
            .stderr(Stdio::null())
            .status()
            .expect("run healthcheck")
    };
    assert!(check(port).success());
    terminate(&child);
    assert!(wait_for_exit(&mut child).success());
    assert!(!check(port).success(), "nothing listens any more");
}
