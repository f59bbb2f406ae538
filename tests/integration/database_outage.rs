//! A sender is told to retry while the database is unreachable: STOW-RS answers 503 with
//! Retry-After (not 500), C-STORE answers out of resources (0xA700), and once the database
//! is back the same request stores every instance. The outage is real: petal reaches PostgreSQL through a TCP proxy that the
//! test cuts (every open connection dropped, new ones refused) and restores, so the server
//! under test loses its database exactly as it would when PostgreSQL stops and starts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petal::domain::Role;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::common::{Engine, TestApp, TestDatabase, postgres_admin_url};
use crate::fixtures::SeriesSpec;
use crate::stow::post_instances;

/// A TCP proxy to PostgreSQL that can be cut and restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accepting = tokio::spawn({
            let (up, connections) = (up.clone(), connections.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropping the socket refuses the connection
                    }
                    let relay = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    connections.lock().expect("connections").push(relay);
                }
            }
        });
        Proxy { port, up, connections, accepting }
    }

    /// Drops every open connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for relay in self.connections.lock().expect("connections").drain(..) {
            relay.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

/// `url` with its host and port replaced by the proxy's.
fn through_proxy(url: &str, port: u16) -> String {
    let mut url = url::Url::parse(url).expect("database URL");
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(port)).expect("port");
    url.to_string()
}

async fn post(app: &TestApp, token: &str, parts: &[Vec<u8>]) -> (StatusCode, Option<String>, Value) {
    let response = post_instances(app, token, "/dicomweb/studies", parts).await;
    let status = response.status();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

/// With tokens, the first thing a request needs from the database is its caller; without
/// (`--auth disabled`), it is storing the instances and auditing them. Both must say "retry".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stow_asks_senders_to_retry_while_postgres_is_unreachable() {
    outage_during_stow(&["--no-worker"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_cannot_be_indexed_asks_the_sender_to_retry() {
    outage_during_stow(&["--no-worker", "--auth", "disabled"]).await;
}

/// A server on a fresh PostgreSQL database that it reaches through a proxy the test can cut.
async fn app_behind_proxy(flags: &[&str]) -> (TestApp, Proxy) {
    let admin = url::Url::parse(&postgres_admin_url()).expect("PostgreSQL URL");
    let upstream: SocketAddr = format!("{}:{}", admin.host_str().expect("host"), admin.port().unwrap_or(5432))
        .parse()
        .expect("PostgreSQL address");
    let proxy = Proxy::start(upstream).await;
    let database = TestDatabase::create(Engine::Postgres).await;
    let server_url = through_proxy(&database.url, proxy.port);
    (TestApp::spawn_on(database, &server_url, flags).await, proxy)
}

async fn outage_during_stow(flags: &[&str]) {
    let (app, proxy) = app_behind_proxy(flags).await;
    let pacs = app.token(Role::Pacs).await;
    let instances = SeriesSpec::new(3).instances().expect("series");

    let (status, _, _) = post(&app, &pacs, &instances[..1]).await;
    assert_eq!(status, StatusCode::OK, "stored while the database is up");

    proxy.cut();
    let started = Instant::now();
    let (status, retry_after, body) = post(&app, &pacs, &instances[1..]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(retry_after.as_deref(), Some("10"), "Retry-After tells the sender when to try again");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(started.elapsed() < Duration::from_secs(60), "the answer comes within the pool's wait");

    proxy.restore();
    let (status, _, body) = post(&app, &pacs, &instances).await;
    assert_eq!(status, StatusCode::OK, "the same request succeeds once the database is back: {body}");
    for instance in &instances {
        let uid = petal::dicom::instance::peek_identity(instance).1.expect("SOP Instance UID");
        let stored = petal::storage::index::find_instance(&app.db, &uid).await.expect("query");
        assert!(stored.is_some(), "instance {uid} is stored once the database is back");
    }
    app.stop().await;
}

/// C-STORE during the outage answers out of resources (0xA700), the DIMSE way of saying
/// "retry later", and the same instance is stored once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cstore_asks_senders_to_retry_while_postgres_is_unreachable() {
    use petal::dicom::part10;
    use petal::dimse::command::status;
    let flags = ["--no-worker", "--dimse-listen", "127.0.0.1:0", "--dimse-calling-aes", "PETAL-TEST"];
    let (app, proxy) = app_behind_proxy(&flags).await;
    let scu = petal::dimse::scu::PeerNode {
        host: "127.0.0.1".into(),
        port: app.dimse_port.expect("DIMSE is on"),
        ae_title: "PETAL".into(),
        calling_ae_title: "PETAL-TEST".into(),
        timeout: Duration::from_secs(90),
        max_pdu_length: 16384,
    };
    let instances = SeriesSpec::new(2).instances().expect("series");
    let (first, first_data) = part10::split(&instances[0]).expect("split");
    assert_eq!(scu.store(&first, first_data).await.expect("answered").status, status::SUCCESS);

    proxy.cut();
    let (second, second_data) = part10::split(&instances[1]).expect("split");
    let started = Instant::now();
    let answer = scu.store(&second, second_data).await.expect("answered");
    assert_eq!(answer.status, status::OUT_OF_RESOURCES, "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(60), "the answer comes within the pool's wait");

    proxy.restore();
    let answer = scu.store(&second, second_data).await.expect("answered");
    assert_eq!(answer.status, status::SUCCESS, "stored once the database is back: {answer:?}");
    let stored = petal::storage::index::find_instance(&app.db, &second.sop_instance_uid).await.expect("query");
    assert!(stored.is_some(), "the retried instance is indexed");
    app.stop().await;
}
