//! Flags several commands share: logging, the database and the blob store.

use clap::{Args, ValueEnum};

/// Embedded default database: a SQLite file next to the blobs, so `petal serve` needs nothing installed.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://petal-data/petal.db";

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
