//! Configuration: one clap tree for the whole `petal` binary.
//!
//! Every option is also read from a `PETAL_*` environment variable (shown in `--help`),
//! so the same binary is configured by flags on a laptop and by a ConfigMap in Kubernetes.
//! The database URL additionally falls back to plain `DATABASE_URL`, as the ecosystem expects.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::Role;

/// Embedded default database: a SQLite file next to the blobs, so `petal serve` needs nothing installed.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://petal-data/petal.db";

#[derive(Debug, Parser)]
#[command(name = "petal", version, about = "Clinical PET denoising server that keeps learning each patient")]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (DICOMweb, admin API, health, metrics), with an embedded worker unless `--no-worker`.
    Serve(ServeArgs),
    /// Run a job worker only (for GPU nodes); it shares the database and blob store with the API.
    Worker(WorkerArgs),
    /// Apply database migrations and exit (also done at the start of `serve` and `worker`).
    Migrate(MigrateArgs),
    /// Create, list and revoke API tokens.
    Token(TokenArgs),
    /// Exit 0 when `/healthz` of a running petal answers 200, else 1 (for images without curl).
    Healthcheck(HealthcheckArgs),
    /// Print performance figures (for docs/benchmarks.md).
    Bench(BenchArgs),
    /// Inspect models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Denoise a folder of DICOM files offline: every static PET series in IN_DIR gets a
    /// derived series in OUT_DIR (no server, no database).
    Denoise(DenoiseArgs),
    /// Write synthetic whole-body FDG PET studies (DICOM series, ground truth, label maps).
    Simulate(SimulateArgs),
    /// Train the base network from simulated v1 data (or real paired series) into a model
    /// directory; resumes from its last checkpoint.
    TrainBase(TrainBaseArgs),
    /// Post a simulated study to a running petal and print where its denoised series is.
    Demo(DemoArgs),
    /// Evaluate petal's science (writes reports and figures).
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum EvalCommand {
    /// Reproduce the TGD paper's Table 1 (v1-net, v2-net, FT-net, TGD-net, TGD_N2N-net; lesion
    /// bias and liver CoV) and its KSE sweep on simulated data; resumable.
    Paper(EvalPaperArgs),
}

#[derive(Debug, Clone, Args)]
pub struct EvalPaperArgs {
    /// A smoke run of a few minutes at a tiny scale (its numbers mean nothing).
    #[arg(long)]
    pub quick: bool,
    /// Folder of the trained networks (reused when run again); `eval-paper-<scale>` by default.
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Where the report, results.json and figures go: docs/results, or WORK/results with --quick.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The running petal.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// File holding an admin token (the one `petal serve` writes on first start).
    #[arg(long, default_value = "petal-data/admin-token")]
    pub token_file: PathBuf,
    /// Seed of the simulated patient.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Pixels across each slice.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Number of slices.
    #[arg(long, default_value_t = 32)]
    pub slices: usize,
    /// How long to wait for the derived series.
    #[arg(long, default_value_t = 600)]
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Args)]
pub struct TrainBaseArgs {
    /// Model directory to write (weights, config, ONNX, report, loss curve); also holds the checkpoints.
    pub output: PathBuf,
    /// Width multiplier of the network (1.0 is the paper's; 0.25 is the shipped model's).
    #[arg(long, default_value_t = 0.25)]
    pub width_multiplier: f64,
    /// Training steps.
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Patches per step.
    #[arg(long, default_value_t = crate::training::DEFAULT_BATCH)]
    pub batch: usize,
    /// Side of the square patches.
    #[arg(long, default_value_t = crate::training::DEFAULT_PATCH)]
    pub patch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub learning_rate: f64,
    /// Share of the steps, at the end, trained at a lower learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr_decay_share: f64,
    /// The lower learning rate, as a multiple of `--learning-rate`.
    #[arg(long, default_value_t = 0.1)]
    pub lr_decay_factor: f64,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Share of the patches drawn around a lesion of the simulated patients (0 draws every
    /// patch uniformly, as the paper did and as the shipped model was trained); docs/models.md
    /// has what 0.5 changed.
    #[arg(long, default_value_t = 0.0)]
    pub lesion_share: f64,
    /// Weight of the squared error at lesion voxels of the simulated patients (1: plain MSE,
    /// every voxel alike). Larger values make flattening a small hot lesion cost more than
    /// the noise it removes; docs/models.md has what it changed.
    #[arg(long, default_value_t = 1.0)]
    pub lesion_weight: f64,
    /// Batches whose BatchNorm statistics, averaged, replace training's running statistics
    /// at the end (0 keeps training's exponential average of the last batches, as the
    /// shipped model does).
    #[arg(long, default_value_t = 0)]
    pub batch_norm_batches: usize,
    /// Independent realizations per count level of the held-out patient in the report.
    #[arg(long, default_value_t = 4)]
    pub held_out_realizations: usize,
    /// Seed of the weights, the patch draws and the first simulated patient.
    #[arg(long, default_value_t = 1000)]
    pub seed: u64,
    /// Simulated training patients (one more is simulated and held out).
    #[arg(long, default_value_t = 6)]
    pub patients: u64,
    /// Pixels across each simulated slice.
    #[arg(long, default_value_t = 96)]
    pub size: usize,
    /// Slices per simulated patient.
    #[arg(long, default_value_t = 32)]
    pub slices: usize,
    /// OSEM version of the training data (the paper's v1-net: v1).
    #[arg(long, value_enum, default_value_t = crate::simulation::ReconVersion::V1)]
    pub recon: crate::simulation::ReconVersion,
    /// Full-count scan time of the simulated patients (s per bed).
    #[arg(long, default_value_t = 120.0)]
    pub seconds_per_bed: f64,
    /// Shares of the full counts the noisy inputs are reconstructed from.
    #[arg(long, value_delimiter = ',', default_values_t = [0.1, 0.25, 0.5, 1.0])]
    pub count_levels: Vec<f64>,
    /// Train on real pairs instead: DIR/<pair>/input and DIR/<pair>/target DICOM series (the last pair is held out).
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Start over even if a checkpoint of the same run exists.
    #[arg(long)]
    pub fresh: bool,
    /// Start from this model directory's weights instead of fresh ones: the run goes on
    /// training that model (e.g. on lesion patches). Its widths must be those of
    /// `--width-multiplier`, and it must not be the output directory.
    #[arg(long)]
    pub init_from: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Folder to write the studies into (one sub-folder `sim-<seed>` per study).
    pub output: PathBuf,
    /// Number of patients (studies), with seeds `--seed`, `--seed + 1`, …
    #[arg(long, default_value_t = 1)]
    pub patients: u64,
    /// Seed of the first patient: the same seed gives the same phantom, counts and files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pixels across each slice (over a 600 mm field of view), e.g. 96, 128 or 192.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Number of axial slices (the phantom spans the thorax to the pelvis whatever the number).
    #[arg(long, default_value_t = 48)]
    pub slices: usize,
    /// Full-count scan time per bed position (s): sets the count level.
    #[arg(long, default_value_t = 120.0)]
    pub seconds_per_bed: f64,
    /// OSEM version: v1 (no resolution modelling, 8 mm filter) or v2 (PSF, no filter).
    #[arg(long, value_enum, default_value_t = crate::simulation::ReconVersion::V1)]
    pub recon: crate::simulation::ReconVersion,
    /// Number of i.i.d. low-count realizations (disjoint parts of the counts).
    #[arg(long, default_value_t = 10)]
    pub realizations: usize,
    /// Share of the full counts in each low-count realization.
    #[arg(long, default_value_t = 0.1)]
    pub low_count_fraction: f64,
}

#[derive(Debug, Clone, Args)]
pub struct DenoiseArgs {
    /// Folder of DICOM files (searched recursively).
    pub input: PathBuf,
    /// Folder for the derived series, one sub-folder per series.
    pub output: PathBuf,
    /// Model directory to denoise with (default: the base model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub inference: InferenceArgs,
    #[command(flatten)]
    pub derived: DerivedSeriesArgs,
}

/// How petal's derived series name themselves.
#[derive(Debug, Clone, Args)]
pub struct DerivedSeriesArgs {
    /// Root of every DICOM UID petal creates (your organisation's root; `2.25` makes
    /// UUID-derived UIDs that need no registration).
    #[arg(long, env = "PETAL_UID_ROOT", default_value = "2.25", value_parser = parse_uid)]
    pub uid_root: crate::dicom::Uid,
    /// Put before the source's SeriesDescription of every derived series.
    #[arg(long, env = "PETAL_SERIES_LABEL", default_value = "petal denoised (research use):")]
    pub series_label: String,
    /// Added to the source's SeriesNumber.
    #[arg(long, env = "PETAL_SERIES_NUMBER_OFFSET", default_value_t = 1000)]
    pub series_number_offset: i32,
}

fn parse_uid(text: &str) -> Result<crate::dicom::Uid, String> {
    let uid = crate::dicom::Uid::parse(text).map_err(|e| format!("`{text}`: {e}"))?;
    crate::dicom::Uid::generate_under(&uid).map_err(|e| format!("`{text}`: {e}"))?;
    Ok(uid)
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter in `tracing` syntax, e.g. `info` or `petal=debug,sqlx=warn`.
    #[arg(long, env = "PETAL_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Log line format: human-readable text or one JSON object per line.
    #[arg(long, env = "PETAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://path/file.db` (embedded default) or `postgres://user@host/db`.
    /// When unset, `DATABASE_URL` is used, else `sqlite://petal-data/petal.db`.
    #[arg(long, env = "PETAL_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Most connections one process keeps open to the database.
    #[arg(long, env = "PETAL_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
}

impl DatabaseArgs {
    /// The URL in force: flag or `PETAL_DATABASE_URL`, then `DATABASE_URL`, then the embedded default.
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
    }
}

#[derive(Debug, Clone, Args)]
pub struct BlobArgs {
    /// Where DICOM instances are kept: a local directory, or `s3://bucket/prefix`
    /// (credentials and endpoint from the standard AWS_* variables).
    #[arg(long, env = "PETAL_BLOB_STORE", default_value = "petal-data/blobs")]
    pub blob_store: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// Bearer tokens with roles (the only mode for real use).
    Enabled,
    /// Every request acts as admin. For local demos only; warned about at every start.
    Disabled,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port the HTTP server listens on.
    #[arg(long, env = "PETAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub blobs: BlobArgs,
    /// Run the API alone; jobs are left to separate `petal worker` processes.
    #[arg(long, env = "PETAL_NO_WORKER")]
    pub no_worker: bool,
    /// Whether requests must carry a bearer token.
    #[arg(long, env = "PETAL_AUTH", value_enum, default_value_t = AuthMode::Enabled)]
    pub auth: AuthMode,
    /// Where the first admin token is written when none exists (mode 0600). If the file
    /// already holds a token (e.g. a mounted Kubernetes Secret), that token becomes the admin token.
    #[arg(long, env = "PETAL_ADMIN_TOKEN_FILE", default_value = "petal-data/admin-token")]
    pub admin_token_file: PathBuf,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub jobs: JobArgs,
    #[command(flatten)]
    pub inference: InferenceArgs,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// What petal does with received series: which are denoised, when a series is complete,
/// and how derived series name themselves (`serve` and `worker`).
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    #[command(flatten)]
    pub derived: DerivedSeriesArgs,
    /// A series counts as complete after this long without a new instance, when its header
    /// gives no instance count (or the count never arrives).
    #[arg(long, env = "PETAL_SERIES_QUIET_PERIOD", default_value = "60s", value_parser = parse_duration)]
    pub series_quiet_period: Duration,
    /// SeriesDescription markers (comma-separated, any case) of Noise2Noise halves: stored as
    /// training material, not denoised.
    #[arg(long, env = "PETAL_N2N_MARKERS", value_delimiter = ',', default_value = "n2n half,noise2noise half")]
    pub n2n_markers: Vec<String>,
    /// SeriesDescription markers of low-count realizations: stored, not denoised.
    #[arg(
        long,
        env = "PETAL_LOW_COUNT_MARKERS",
        value_delimiter = ',',
        default_value = "low-count,low count,lowcount"
    )]
    pub low_count_markers: Vec<String>,
    #[command(flatten)]
    pub learning: LearningArgs,
}

/// Online learning: when rounds start by themselves, their default settings, the gate a new
/// version must pass, and what happens after activation.
#[derive(Debug, Clone, Args)]
pub struct LearningArgs {
    /// Start a round by itself when a study brings a complete pair of N2N halves.
    #[arg(long, env = "PETAL_AUTO_ROUNDS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_rounds: bool,
    /// Default settings of every round, as a JSON object of the fields to change (e.g.
    /// `{"steps_per_pass": 400, "phi": 0.4}`); a round request may change them again.
    #[arg(long, env = "PETAL_ROUND_DEFAULTS", default_value = "{}", value_parser = parse_round_defaults)]
    pub round_defaults: crate::training::n2n_round::RoundSettings,
    /// After a round's version goes live, denoise the patient's latest series again with it.
    #[arg(long, env = "PETAL_REDENOISE_AFTER_ROUND", default_value_t = true, action = clap::ArgAction::Set)]
    pub redenoise_after_round: bool,
    /// How often a running round writes its progress (and looks for a cancel request).
    #[arg(long, env = "PETAL_ROUND_PROGRESS_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub round_progress_interval: Duration,
    /// Gate: the new version's held-out N2N loss may be at most this multiple of the parent's.
    #[arg(long, env = "PETAL_GATE_MAX_VALIDATION_LOSS_RATIO", default_value_t = 1.0)]
    pub gate_max_validation_loss_ratio: f64,
    /// Gate: largest change of mean SUV over the body against the parent's output, percent.
    #[arg(long, env = "PETAL_GATE_BODY_MEAN_PERCENT", default_value_t = 2.0)]
    pub gate_body_mean_percent: f64,
    /// Gate: largest change of mean SUV in large uniform regions, percent.
    #[arg(long, env = "PETAL_GATE_UNIFORM_MEAN_PERCENT", default_value_t = 3.0)]
    pub gate_uniform_mean_percent: f64,
    /// Gate: largest change of a hot spot's SUVmax, percent.
    #[arg(long, env = "PETAL_GATE_HOT_SPOT_MAX_PERCENT", default_value_t = 10.0)]
    pub gate_hot_spot_max_percent: f64,
}

impl LearningArgs {
    pub fn gate_limits(&self) -> crate::training::gate::GateLimits {
        crate::training::gate::GateLimits {
            max_validation_loss_ratio: self.gate_max_validation_loss_ratio,
            body_mean_percent: self.gate_body_mean_percent,
            uniform_mean_percent: self.gate_uniform_mean_percent,
            hot_spot_max_percent: self.gate_hot_spot_max_percent,
        }
    }
}

fn parse_round_defaults(text: &str) -> Result<crate::training::n2n_round::RoundSettings, String> {
    let settings: crate::training::n2n_round::RoundSettings =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object of round settings: {e}"))?;
    settings.validate()?;
    Ok(settings)
}

impl PipelineArgs {
    pub fn rules(&self) -> crate::dicom::series_kind::DescriptionRules {
        let clean =
            |markers: &[String]| markers.iter().map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()).collect();
        crate::dicom::series_kind::DescriptionRules {
            n2n_half: clean(&self.n2n_markers),
            low_count: clean(&self.low_count_markers),
        }
    }

    pub fn learning_settings(&self) -> crate::learning::LearningSettings {
        crate::learning::LearningSettings {
            auto_rounds: self.learning.auto_rounds,
            round_defaults: self.learning.round_defaults.clone(),
            quiet_period: self.series_quiet_period,
            gate: self.learning.gate_limits(),
            redenoise_after_round: self.learning.redenoise_after_round,
            progress_interval: self.learning.round_progress_interval,
        }
    }

    pub fn completion(&self) -> crate::pipeline::completion::CompletionSettings {
        crate::pipeline::completion::CompletionSettings { quiet_period: self.series_quiet_period, rules: self.rules() }
    }

    pub fn naming(&self) -> crate::pipeline::denoise_job::DerivedNaming {
        crate::pipeline::denoise_job::DerivedNaming {
            uid_root: self.derived.uid_root.clone(),
            label: self.derived.series_label.clone(),
            series_number_offset: self.derived.series_number_offset,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// How often an idle worker looks for jobs (PostgreSQL also wakes it on NOTIFY).
    #[arg(long, env = "PETAL_JOB_POLL_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub job_poll_interval: Duration,
    /// How long a claimed job stays leased without a heartbeat before another worker takes it over.
    #[arg(long, env = "PETAL_JOB_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub job_lease: Duration,
    /// How often a running job renews its lease.
    #[arg(long, env = "PETAL_JOB_HEARTBEAT", default_value = "10s", value_parser = parse_duration)]
    pub job_heartbeat: Duration,
}

impl JobArgs {
    pub fn settings(&self) -> crate::worker::WorkerSettings {
        crate::worker::WorkerSettings {
            poll_interval: self.job_poll_interval,
            lease: self.job_lease,
            heartbeat: self.job_heartbeat,
            ..crate::worker::WorkerSettings::default()
        }
    }
}

/// Inference, in processes that run jobs (`serve` without `--no-worker`, and `worker`).
#[derive(Debug, Clone, Args)]
pub struct InferenceArgs {
    /// The ONNX Runtime shared library (libonnxruntime.so, version 1.24 or newer), loaded at
    /// start; `scripts/setup` puts the CPU build from PyPI at the default path (relative to
    /// the working directory).
    #[arg(long, env = "ORT_DYLIB_PATH", default_value = crate::inference::DEFAULT_ORT_DYLIB_PATH)]
    pub ort_dylib_path: PathBuf,
    /// Directory of the base model (config.json, model.safetensors), used for patients
    /// without a model of their own.
    #[arg(long, env = "PETAL_BASE_MODEL", default_value = crate::inference::DEFAULT_BASE_MODEL)]
    pub base_model: PathBuf,
    /// Threads one inference uses (ONNX Runtime intra-op threads); 0 means one per CPU core.
    #[arg(long, env = "PETAL_INFERENCE_THREADS", default_value_t = 0)]
    pub inference_threads: usize,
    /// Slice windows per network call: more is faster until memory runs short.
    #[arg(long, env = "PETAL_INFERENCE_BATCH", default_value_t = 4, value_parser = parse_positive)]
    pub inference_batch: usize,
    /// Models whose inference sessions are kept ready (least recently used dropped first).
    #[arg(long, env = "PETAL_INFERENCE_SESSIONS", default_value_t = 4, value_parser = parse_positive)]
    pub inference_sessions: usize,
}

impl InferenceArgs {
    pub fn settings(&self) -> crate::inference::InferenceSettings {
        crate::inference::InferenceSettings {
            ort_dylib_path: self.ort_dylib_path.clone(),
            base_model: self.base_model.clone(),
            intra_threads: match self.inference_threads {
                0 => crate::inference::available_cores(),
                n => n,
            },
            batch_windows: self.inference_batch,
            session_cache: self.inference_sessions,
        }
    }
}

/// Parses a whole number of at least 1.
fn parse_positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{text}` is not a whole number of at least 1")),
    }
}

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Time limit for JSON and probe requests (uploads and downloads have none), e.g. `30s`.
    #[arg(long, env = "PETAL_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Largest JSON request body, in bytes.
    #[arg(long, env = "PETAL_JSON_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub json_body_limit: usize,
    /// Largest upload (STOW-RS) request body, in bytes.
    #[arg(long, env = "PETAL_UPLOAD_BODY_LIMIT", default_value_t = 8 * 1024 * 1024 * 1024)]
    pub upload_body_limit: u64,
    #[command(flatten)]
    pub sessions: SessionArgs,
}

/// Web-page sessions (a token presented once becomes an HttpOnly session cookie).
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// How long a web-page session lasts (never longer than its token).
    #[arg(long, env = "PETAL_SESSION_LIFETIME", default_value = "8h", value_parser = parse_duration)]
    pub session_lifetime: Duration,
    /// Mark the session cookie `Secure` (sent over HTTPS only; browsers also accept it from
    /// http://localhost). Turn off only for a plain-HTTP demo on another host name.
    #[arg(long, env = "PETAL_SECURE_COOKIES", default_value_t = true, action = clap::ArgAction::Set)]
    pub secure_cookies: bool,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Serve `/metrics` (job metrics, queue by kind and state) and `/healthz` on this address,
    /// for Prometheus and probes; none when unset.
    #[arg(long, env = "PETAL_WORKER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub blobs: BlobArgs,
    #[command(flatten)]
    pub jobs: JobArgs,
    #[command(flatten)]
    pub inference: InferenceArgs,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// What the token may do: `pacs` stores, `radiologist` reads, `admin` does everything.
        #[arg(long, value_enum)]
        role: Role,
        /// A name that says who or what uses it (shown in the audit trail).
        #[arg(long)]
        name: String,
        /// Lifetime such as `90d`, `12h` or `3600s`; no expiry when omitted.
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<Duration>,
    },
    /// List tokens: names, roles, creation, last use, expiry, revocation.
    List,
    /// Revoke a token by id or name; it stops working at once.
    Revoke {
        /// The token's id or its name.
        token: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ModelCommand {
    /// Architecture, parameter count, FLOPs and sha256 of a model.
    Inspect {
        /// A model directory (config.json + model.safetensors) or a model version id in the database.
        model: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// KSE scores per layer and input channel, the channels flagged below φ, and the
    /// fraction of parameters a TGD round would retrain.
    Kse {
        /// A model directory, a .safetensors file, or a model version id in the database.
        model: String,
        /// Threshold: input channels scoring below it are retrained.
        #[arg(long, default_value_t = 0.3)]
        phi: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Writes the model as ONNX: the faithful graph (Conv + BatchNormalization, every
    /// parameter and running statistic) by default, or the inference graph with --folded.
    ExportOnnx {
        /// A model directory or a model version id in the database.
        model: String,
        /// The .onnx file to write.
        out: PathBuf,
        /// BatchNorm folded into the convolutions (what the inference engine runs).
        #[arg(long)]
        folded: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Reads an ONNX DnCNN of this architecture (e.g. exported from PyTorch) into a model directory.
    ImportOnnx {
        /// The .onnx file to read.
        input: PathBuf,
        /// The model directory to create.
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Also append the figures, with the command line, date and machine, to this Markdown
    /// file (e.g. docs/benchmarks.md).
    #[arg(long, global = true)]
    pub record: Option<PathBuf>,
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// STOW-RS ingest: instances/s and MB/s for a synthetic PET series.
    Stow(crate::bench::stow::StowBenchArgs),
    /// One TGD training step (forward, backward, Adam) next to a plain fine-tune step, on each burn backend built in.
    #[command(alias = "train")]
    TrainStep(crate::bench::train_step::TrainStepBenchArgs),
    /// Whole-volume inference: petal's engine vs Python onnxruntime, against the machine's GEMM rate.
    Inference(crate::bench::inference::InferenceBenchArgs),
    /// The denoise pipeline on a simulated series, next to the raw inference engine (its overhead).
    Denoise(crate::bench::denoise::DenoiseBenchArgs),
    /// A short N2N + TGD round on a simulated patient, on the CPU or CUDA (one JSON line).
    Round(crate::bench::round::RoundBenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// Address of the petal server to ask (a wildcard address means this host).
    #[arg(long, env = "PETAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How long to wait for the answer.
    #[arg(long, env = "PETAL_HEALTHCHECK_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses `90d`, `12h`, `30m`, `45s`, `250ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| format!("`{text}` is not a duration such as 30s, 15m, 12h or 90d"))?;
    let seconds = match unit {
        "" | "s" => return Ok(Duration::from_secs(value)),
        "ms" => return Ok(Duration::from_millis(value)),
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit `{unit}` in `{text}`: use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs(value * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("7 weeks").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
