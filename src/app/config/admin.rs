//! The flags of the administrative commands: `token`, `model`, `healthcheck`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::common::DatabaseArgs;
use super::values::{parse_duration, role_parser};
use crate::domain::Role;

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
        #[arg(long, value_parser = role_parser())]
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
pub struct HealthcheckArgs {
    /// Address of the petal server to ask (a wildcard address means this host).
    #[arg(long, env = "PETAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How long to wait for the answer.
    #[arg(long, env = "PETAL_HEALTHCHECK_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}
