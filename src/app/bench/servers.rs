//! DICOM servers a bench sends to, each in its own process so that its memory can be read
//! from /proc: petal (this binary's `serve`, API only unless a bench asks for its worker, on
//! a fresh SQLite database unless given another) and
//! Orthanc 1.10 with its DICOMweb plugin (Debian's packages, which `scripts/setup` installs),
//! by STOW-RS and, with DIMSE on, by C-STORE from dcmtk's storescu.
//! Both listen on 127.0.0.1 on a free port and are killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::memory::Memory;

const ORTHANC: &str = "/usr/sbin/Orthanc";
const DICOMWEB_PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// A server process and where to post STOW-RS requests.
pub struct ServerProcess {
    pub name: &'static str,
    child: Child,
    /// Its HTTP root (`http://127.0.0.1:PORT`).
    pub base_url: String,
    /// The STOW-RS endpoint (…/studies).
    pub stow_url: String,
    /// Bearer token, where the server wants one.
    pub token: Option<String>,
    /// Its DIMSE C-STORE port and AE title, when it listens for DIMSE.
    pub dimse: Option<(u16, &'static str)>,
}

/// How the bench starts petal.
#[derive(Debug, Clone, Default)]
pub struct PetalOptions {
    /// Its database; a fresh SQLite file in the server's folder when `None`.
    pub database: Option<String>,
    /// Listen for DIMSE (C-STORE from the bench's AE title).
    pub dimse: bool,
    /// Run the worker in the same process (denoising with the shipped model, ONNX Runtime
    /// from `runtime/`), as a one-process deployment does; series are complete only by
    /// their NumberOfSlices (the quiet period is an hour), so the bench decides what is
    /// denoised.
    pub worker: bool,
}

/// Where to post STOW-RS requests to one server; cheap to clone into concurrent senders.
#[derive(Debug, Clone)]
pub struct StowTarget {
    name: &'static str,
    url: String,
    token: Option<String>,
}

impl StowTarget {
    /// Posts one multipart STOW-RS body; fails unless every instance was stored.
    pub async fn post(&self, client: &reqwest::Client, body: bytes::Bytes) -> anyhow::Result<()> {
        let mut request = client
            .post(&self.url)
            .header("content-type", format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}"))
            .header("accept", "application/dicom+json")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| format!("posting to {}", self.name))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("reading {}'s STOW response", self.name))?;
        anyhow::ensure!(
            status.as_u16() == 200,
            "{} answered {status}: {}",
            self.name,
            text.chars().take(300).collect::<String>()
        );
        Ok(())
    }
}

/// The multipart boundary of every body [`multipart_body`] builds.
pub const BOUNDARY: &str = "petal-bench-boundary";

/// The calling AE title of the bench's C-STOREs.
pub const BENCH_AE_TITLE: &str = "BENCH";

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?.local_addr()?.port())
}

async fn wait_until_up(url: &str, log: &Path) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
        anyhow::ensure!(Instant::now() < deadline, "the server did not start; see {}", log.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

impl ServerProcess {
    /// petal's `serve` in its own process, storing under `dir`, as `options` say.
    pub async fn petal(dir: &Path, options: &PetalOptions) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dimse_port = free_port()?;
        let dimse = options.dimse;
        let dimse_flags = if dimse {
            vec![
                "--dimse-listen".to_owned(),
                format!("127.0.0.1:{dimse_port}"),
                "--dimse-calling-aes".into(),
                BENCH_AE_TITLE.into(),
            ]
        } else {
            Vec::new()
        };
        let database = options.database.clone().unwrap_or_else(|| format!("sqlite://{}/petal.db", dir.display()));
        let worker_flags: &[&str] = if options.worker { &["--series-quiet-period", "1h"] } else { &["--no-worker"] };
        let token_file = dir.join("admin-token");
        let log_path = dir.join("petal.log");
        let log = std::fs::File::create(&log_path).context("creating petal.log")?;
        let child = Command::new(std::env::current_exe().context("locating the petal binary")?)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}"), "--database-url", &database])
            .args(worker_flags)
            .args(["--log", "warn", "--blob-store"])
            .arg(dir.join("blobs"))
            .arg("--admin-token-file")
            .arg(&token_file)
            .args(&dimse_flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting petal serve")?;
        let mut server = Self {
            name: "petal",
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            stow_url: format!("http://127.0.0.1:{port}/dicomweb/studies"),
            token: None,
            dimse: dimse.then_some((dimse_port, "PETAL")),
        };
        wait_until_up(&format!("http://127.0.0.1:{port}/healthz"), &log_path).await?;
        server.token = Some(std::fs::read_to_string(&token_file).context("reading the admin token")?.trim().to_owned());
        Ok(server)
    }

    /// Orthanc with its DICOMweb plugin, storing under `dir`; with its DICOM server (AE
    /// title `ORTHANC`, accepting C-STORE from any node) when `dimse` is set. This
    /// configuration is the bench's comparison: it changes only with this file.
    pub async fn orthanc(dir: &Path, dimse: bool) -> anyhow::Result<Self> {
        anyhow::ensure!(
            Path::new(ORTHANC).exists() && Path::new(DICOMWEB_PLUGIN).exists(),
            "Orthanc or its DICOMweb plugin is missing: run scripts/setup"
        );
        let port = free_port()?;
        let dicom_port = free_port()?;
        let storage: PathBuf = dir.join("orthanc-db");
        let config = serde_json::json!({
            "Name": "petal-bench",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "HttpPort": port,
            "DicomPort": dicom_port,
            "DicomServerEnabled": dimse,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": { "Enable": true, "Root": "/dicom-web/" }
        });
        let config_path = dir.join("orthanc.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?).context("writing orthanc.json")?;
        let log_path = dir.join("orthanc.log");
        let log = std::fs::File::create(&log_path).context("creating orthanc.log")?;
        let child = Command::new(ORTHANC)
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting Orthanc")?;
        let server = Self {
            name: "Orthanc",
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            stow_url: format!("http://127.0.0.1:{port}/dicom-web/studies"),
            token: None,
            dimse: dimse.then_some((dicom_port, "ORTHANC")),
        };
        wait_until_up(&format!("http://127.0.0.1:{port}/system"), &log_path).await?;
        Ok(server)
    }

    /// The process's resident memory.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of_process(&self.child.id().to_string())
    }

    /// Sends `files` by C-STORE with dcmtk's storescu, one association; fails unless every
    /// instance was stored.
    pub fn store_scu(&self, files: &[PathBuf]) -> anyhow::Result<()> {
        let (port, ae_title) = self.dimse.context("the server was started without DIMSE")?;
        let output = Command::new("storescu")
            .args(["-aet", BENCH_AE_TITLE, "-aec", ae_title, "127.0.0.1", &port.to_string()])
            .args(files)
            .output()
            .context("running storescu (Debian package dcmtk; run scripts/setup)")?;
        anyhow::ensure!(
            output.status.success(),
            "storescu to {} failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// Where to post its STOW-RS requests, for a sender of its own.
    pub fn target(&self) -> StowTarget {
        StowTarget { name: self.name, url: self.stow_url.clone(), token: self.token.clone() }
    }

    /// Posts one multipart STOW-RS body; fails unless every instance was stored.
    pub async fn post(&self, client: &reqwest::Client, body: bytes::Bytes) -> anyhow::Result<()> {
        self.target().post(client, body).await
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder under the system's temporary directory, removed when dropped (after the
/// servers writing into it, which must be dropped first).
pub struct ScratchFolder(PathBuf);

impl ScratchFolder {
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A multipart/related body of `instances` (Part 10 files), parts separated by `boundary`.
pub fn multipart_body(instances: &[Vec<u8>], boundary: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(instances.iter().map(Vec::len).sum::<usize>() + instances.len() * 64);
    for instance in instances {
        body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
        body.extend_from_slice(instance);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}
