//! The flags of `petal serve`, `petal worker` and `petal migrate`: HTTP, jobs, inference,
//! the pipeline and online learning.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::common::{BlobArgs, DatabaseArgs};
use super::values::{auth_mode_parser, parse_duration, parse_positive, parse_round_defaults, parse_uid};
use crate::api::AuthMode;

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
    #[arg(long, env = "PETAL_AUTH", default_value = "enabled", value_parser = auth_mode_parser())]
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
    #[command(flatten)]
    pub dimse: super::DimseArgs,
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
    #[command(flatten)]
    pub forwarding: super::ForwardArgs,
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
    /// How strongly series are denoised: `standard` (the network's output),
    /// `lesion-preserving` (more of the smallest lesions' contrast, more noise), or the share
    /// of the network's change kept, in (0, 1]. Recorded in each derived series and in the
    /// audit trail; a re-denoise request may ask for another.
    #[arg(long, env = "PETAL_DENOISE_STRENGTH", default_value = "standard")]
    pub strength: crate::domain::DenoiseStrength,
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
    pub round_defaults: crate::science::training::n2n_round::RoundSettings,
    /// After a round's version goes live, denoise the patient's latest series again with it.
    #[arg(long, env = "PETAL_REDENOISE_AFTER_ROUND", default_value_t = true, action = clap::ArgAction::Set)]
    pub redenoise_after_round: bool,
    /// How often a running round writes its progress (and looks for a cancel request).
    #[arg(long, env = "PETAL_ROUND_PROGRESS_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub round_progress_interval: Duration,
    /// Gate: when set, the new version's held-out N2N loss may be at most this multiple of
    /// the parent's (unset: the error estimate decides).
    #[arg(long, env = "PETAL_GATE_MAX_VALIDATION_LOSS_RATIO")]
    pub gate_max_validation_loss_ratio: Option<f64>,
    /// Gate: largest drift of mean SUV over the body from the input's (unless the parent's
    /// output drifted as far), percent.
    #[arg(long, env = "PETAL_GATE_BODY_MEAN_PERCENT", default_value_t = 2.0)]
    pub gate_body_mean_percent: f64,
    /// Gate: the same for mean SUV in large uniform regions, percent.
    #[arg(long, env = "PETAL_GATE_UNIFORM_MEAN_PERCENT", default_value_t = 3.0)]
    pub gate_uniform_mean_percent: f64,
    /// Gate: how far a hot spot's SUVmax may leave the range between the parent's output and
    /// the input, percent of the parent's.
    #[arg(long, env = "PETAL_GATE_HOT_SPOT_MAX_PERCENT", default_value_t = 10.0)]
    pub gate_hot_spot_max_percent: f64,
    /// Gate: the upper end of the interval of the estimated change of the error against the
    /// clean image (noise floor removed) must be below this, percent (0: a sure improvement).
    #[arg(long, env = "PETAL_GATE_MAX_ERROR_CHANGE_PERCENT", default_value_t = 0.0, allow_negative_numbers = true)]
    pub gate_max_error_change_percent: f64,
    /// Gate: confidence of that interval (two-sided, between 0.5 and 0.999).
    #[arg(long, env = "PETAL_GATE_CONFIDENCE", default_value_t = 0.9, value_parser = super::values::parse_confidence)]
    pub gate_confidence: f64,
    /// Gate, on the full-count series: how many percentage points further from the input's
    /// SUVpeak a hot spot of the input may move than the parent moved it.
    #[arg(long, env = "PETAL_GATE_HOT_SPOT_PEAK_POINTS", default_value_t = 5.0)]
    pub gate_hot_spot_peak_points: f64,
    /// Gate, on the full-count series: the share of the input's noise in uniform regions
    /// (percent) above which the new output may not be noisier than the parent's.
    #[arg(long, env = "PETAL_GATE_NOISE_SHARE_PERCENT", default_value_t = 50.0)]
    pub gate_noise_share_percent: f64,
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
