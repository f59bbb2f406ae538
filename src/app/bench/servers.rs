//! DICOM servers a bench sends to, each in its own process so that its memory can be read
//! from /proc: petal (this binary's `serve`, API only, on a fresh SQLite database) and
//! Orthanc 1.10 with its DICOMweb plugin (Debian's packages, which `scripts/setup` installs),
//! by STOW-RS and, with DIMSE on, by C-STORE from dcmtk's storescu.
//! Both listen on 127.0.0.1 on a free port and are killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

const ORTHANC: &str = "/usr/sbin/Orthanc";
const DICOMWEB_PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// A server process and where to post STOW-RS requests.
pub struct ServerProcess {
    pub name: &'static str,
    child: Child,
    /// The STOW-RS endpoint (…/studies).
    pub stow_url: String,
    /// Bearer token, where the server wants one.
    pub token: Option<String>,
    /// Its DIMSE C-STORE port and AE title, when it listens for DIMSE.
    pub dimse: Option<(u16, &'static str)>,
}

/// The calling AE title of the bench's C-STOREs.
pub const BENCH_AE_TITLE: &str = "BENCH";

/// Resident memory of a process (KiB): now, and the peak so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

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
    /// petal's API (no worker) on `database` (a fresh SQLite file in `dir` when `None`),
    /// with its DIMSE listener when `dimse` is set.
    pub async fn petal(dir: &Path, database: Option<&str>, dimse: bool) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dimse_port = free_port()?;
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
        let database = database.map_or_else(|| format!("sqlite://{}/petal.db", dir.display()), str::to_owned);
        let token_file = dir.join("admin-token");
        let log_path = dir.join("petal.log");
        let log = std::fs::File::create(&log_path).context("creating petal.log")?;
        let child = Command::new(std::env::current_exe().context("locating the petal binary")?)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}"), "--database-url", &database, "--no-worker"])
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
            stow_url: format!("http://127.0.0.1:{port}/dicom-web/studies"),
            token: None,
            dimse: dimse.then_some((dicom_port, "ORTHANC")),
        };
        wait_until_up(&format!("http://127.0.0.1:{port}/system"), &log_path).await?;
        Ok(server)
    }

    /// The process's resident memory, from /proc/PID/status.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("reading the server's /proc status")?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .with_context(|| format!("{name} in /proc status"))
        };
        Ok(Memory { rss_kib: field("VmRSS:")?, peak_kib: field("VmHWM:")? })
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

    /// Posts one multipart STOW-RS body; fails unless every instance was stored.
    pub async fn post(&self, client: &reqwest::Client, body: Vec<u8>, boundary: &str) -> anyhow::Result<()> {
        let mut request = client
            .post(&self.stow_url)
            .header("content-type", format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"))
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

/// A multipart/related body of `instances` (Part 10 files).
pub fn multipart_body(instances: &[Vec<u8>], boundary: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(instances.iter().map(Vec::len).sum::<usize>() + instances.len() * 64);
    for instance in instances {
        body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
        body.extend_from_slice(instance);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}
