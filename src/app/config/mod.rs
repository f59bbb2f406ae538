//! Configuration: one clap tree for the whole `petal` binary.
//!
//! Every option is also read from a `PETAL_*` environment variable (shown in `--help`),
//! so the same binary is configured by flags on a laptop and by a ConfigMap in Kubernetes.
//! The database URL additionally falls back to plain `DATABASE_URL`, as the ecosystem expects.
//!
//! One file per group of commands: [`common`] flags, [`serve`] (and `worker`, `migrate`),
//! [`dimse`] (the DIMSE listener of `serve`),
//! [`offline`] commands, [`admin`] commands, [`bench`]; [`values`] parses what is more than
//! a string or a number. This module only parses: turning flags into the parts' settings
//! is [`crate::app::assembly`]'s job.

mod admin;
mod bench;
mod common;
mod dimse;
mod offline;
mod serve;
mod values;

use clap::{Parser, Subcommand};

pub use admin::{HealthcheckArgs, ModelCommand, TokenAction, TokenArgs};
pub use bench::{BenchArgs, BenchCommand};
pub use common::{BlobArgs, DEFAULT_DATABASE_URL, DatabaseArgs, LogArgs, LogFormat};
pub use dimse::{DimseArgs, ForwardArgs, OtherObjectsArg};
pub use offline::{
    DemoArgs, DenoiseArgs, EvalCommand, EvalNemaArgs, EvalPaperArgs, EvalRoundsArgs, GeometryArgs, RoundCase,
    SimulateArgs, TrainBaseArgs,
};
pub use serve::{
    DerivedSeriesArgs, HttpArgs, InferenceArgs, JobArgs, LearningArgs, MigrateArgs, PipelineArgs, ServeArgs,
    SessionArgs, WorkerArgs,
};
pub use values::parse_duration;

#[derive(Debug, Parser)]
#[command(name = "petal", version, about = "Clinical PET denoising server that keeps learning each patient")]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant (`serve`'s flags) costs nothing.
#[allow(clippy::large_enum_variant)]
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
    fn byte_sizes_parse_with_binary_units() {
        assert_eq!(values::parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(values::parse_byte_size("512 MiB"), Ok(512 << 20));
        assert_eq!(values::parse_byte_size("4096"), Ok(4096));
        assert!(values::parse_byte_size("1 TB").is_err());
        assert!(values::parse_byte_size("GiB").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
