//! Model directories on disk (docs/models.md): `models/<name>/` holds `model.safetensors`
//! (the weights), `config.json` (the architecture), and optionally `model.onnx` (the folded
//! inference graph) and `report.md` (how the model was made). The sha256 of the
//! safetensors bytes identifies the weights.

use std::path::{Path, PathBuf};

use super::config::{ConfigError, DnCnnConfig};
use super::weights::{ModelWeights, WeightsError, sha256_hex};

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const ONNX_FILE: &str = "model.onnx";
pub const REPORT_FILE: &str = "report.md";

#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a model config: {source}")]
    Config { path: PathBuf, source: serde_json::Error },
    #[error("{path}: {source}")]
    InvalidConfig { path: PathBuf, source: ConfigError },
    #[error("{path}: {source}")]
    Weights { path: PathBuf, source: WeightsError },
}

/// A model's architecture, weights and content hash.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub config: DnCnnConfig,
    pub weights: ModelWeights,
    /// sha256 of the safetensors bytes.
    pub sha256: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelDirError + '_ {
    move |source| ModelDirError::Io { path: path.to_path_buf(), source }
}

impl StoredModel {
    /// Pairs weights with their architecture after checking they fit it.
    pub fn new(config: DnCnnConfig, weights: ModelWeights) -> Result<Self, WeightsError> {
        weights.check(&config)?;
        let sha256 = sha256_hex(&weights.to_safetensors()?);
        Ok(Self { config, weights, sha256 })
    }

    /// Reads and checks the model directory `dir`.
    pub fn load(dir: &Path) -> Result<Self, ModelDirError> {
        let config_path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
        let config: DnCnnConfig = serde_json::from_str(&text)
            .map_err(|source| ModelDirError::Config { path: config_path.clone(), source })?;
        config.validate().map_err(|source| ModelDirError::InvalidConfig { path: config_path, source })?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&weights_path).map_err(io(&weights_path))?;
        Self::from_parts(config, &bytes).map_err(|source| ModelDirError::Weights { path: weights_path, source })
    }

    /// Builds a model from a config and safetensors bytes (as stored in the database).
    pub fn from_parts(config: DnCnnConfig, safetensors: &[u8]) -> Result<Self, WeightsError> {
        let weights = ModelWeights::from_safetensors(safetensors)?;
        weights.check(&config)?;
        Ok(Self { config, weights, sha256: sha256_hex(safetensors) })
    }

    /// Writes `model.safetensors` and `config.json` into `dir` (created if needed), plus the
    /// ONNX graph and report when given.
    pub fn save(&self, dir: &Path, onnx: Option<&[u8]>, report: Option<&str>) -> Result<(), ModelDirError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let bytes = self
            .weights
            .to_safetensors()
            .map_err(|source| ModelDirError::Weights { path: weights_path.clone(), source })?;
        std::fs::write(&weights_path, bytes).map_err(io(&weights_path))?;
        let config_path = dir.join(CONFIG_FILE);
        let json = serde_json::to_string_pretty(&self.config)
            .map_err(|source| ModelDirError::Config { path: config_path.clone(), source })?;
        std::fs::write(&config_path, json + "\n").map_err(io(&config_path))?;
        if let Some(onnx) = onnx {
            let path = dir.join(ONNX_FILE);
            std::fs::write(&path, onnx).map_err(io(&path))?;
        }
        if let Some(report) = report {
            let path = dir.join(REPORT_FILE);
            std::fs::write(&path, report).map_err(io(&path))?;
        }
        Ok(())
    }
}
