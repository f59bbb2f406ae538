//! A model's tensors as plain `f32` arrays under stable names, and their safetensors form.
//!
//! The names follow the layers (docs/models.md), so weights trained elsewhere can be
//! imported by renaming: `conv{i}.weight` [out, in, 3, 3], `conv{i}.bias` [out], and for
//! the layers with BatchNorm (conv2..conv7) `bn{i}.gamma`, `bn{i}.beta`,
//! `bn{i}.running_mean`, `bn{i}.running_var` [out]. Everything here is independent of
//! burn and ONNX: the network, the exporters and KSE all read and write this form.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use super::config::{DnCnnConfig, KERNEL_SIZE};
use super::kse::{ConvWeights, ShapeError};

/// Tensor names of layer `index` (1-based).
pub mod names {
    pub fn conv_weight(index: usize) -> String {
        format!("conv{index}.weight")
    }
    pub fn conv_bias(index: usize) -> String {
        format!("conv{index}.bias")
    }
    pub fn bn_gamma(index: usize) -> String {
        format!("bn{index}.gamma")
    }
    pub fn bn_beta(index: usize) -> String {
        format!("bn{index}.beta")
    }
    pub fn bn_running_mean(index: usize) -> String {
        format!("bn{index}.running_mean")
    }
    pub fn bn_running_var(index: usize) -> String {
        format!("bn{index}.running_var")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("not a safetensors file: {0}")]
    Format(#[from] safetensors::SafeTensorError),
    #[error("tensor {name} is {dtype:?}; petal reads float32 weights")]
    DataType { name: String, dtype: Dtype },
    #[error("tensor {name} has shape {shape:?}; a convolution weight is [out, in, kh, kw]")]
    NotConvolution { name: String, shape: Vec<usize> },
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("no convolution weights named conv1.weight, conv2.weight, … were found")]
    NoConvolutions,
    #[error("tensor {0} is missing for this architecture")]
    Missing(String),
    #[error("tensor {name} has shape {found:?}; the config needs {expected:?}")]
    WrongShape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor {name} holds {values} values for shape {shape:?}")]
    Length { name: String, values: usize, shape: Vec<usize> },
    #[error("tensor {0} holds NaN or infinity")]
    NotFinite(String),
}

/// One tensor: row-major `f32` values and their shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor32 {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Tensor32 {
    pub fn new(shape: Vec<usize>, values: Vec<f32>) -> Self {
        Self { shape, values }
    }

    pub fn filled(shape: Vec<usize>, value: f32) -> Self {
        let len = shape.iter().product();
        Self { shape, values: vec![value; len] }
    }
}

/// All tensors of one model, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelWeights {
    tensors: BTreeMap<String, Tensor32>,
}

impl ModelWeights {
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor32) {
        self.tensors.insert(name.into(), tensor);
    }

    pub fn get(&self, name: &str) -> Option<&Tensor32> {
        self.tensors.get(name)
    }

    /// The tensor `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&Tensor32, WeightsError> {
        self.get(name).ok_or_else(|| WeightsError::Missing(name.to_owned()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor32)> {
        self.tensors.iter()
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Every tensor the architecture of `config` needs, with the right shape and finite values.
    pub fn check(&self, config: &DnCnnConfig) -> Result<(), WeightsError> {
        for (name, shape) in expected_tensors(config) {
            let tensor = self.require(&name)?;
            if tensor.shape != shape {
                return Err(WeightsError::WrongShape { name, expected: shape, found: tensor.shape.clone() });
            }
            if tensor.values.len() != shape.iter().product::<usize>() {
                return Err(WeightsError::Length { name, values: tensor.values.len(), shape });
            }
            if tensor.values.iter().any(|v| !v.is_finite()) {
                return Err(WeightsError::NotFinite(name));
            }
        }
        Ok(())
    }

    /// The safetensors bytes (little-endian float32, sorted names, so equal weights give
    /// equal bytes and equal sha256).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, WeightsError> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| (name.clone(), t.shape.clone(), t.values.iter().flat_map(|v| v.to_le_bytes()).collect()))
            .collect();
        let views = bytes
            .iter()
            .map(|(name, shape, data)| Ok((name.as_str(), TensorView::new(Dtype::F32, shape.clone(), data)?)))
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        Ok(safetensors::serialize(views, None)?)
    }

    /// Reads safetensors bytes; every tensor must be float32.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, WeightsError> {
        let file = SafeTensors::deserialize(bytes)?;
        let mut weights = Self::default();
        for (name, view) in file.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(WeightsError::DataType { name, dtype: view.dtype() });
            }
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            weights.insert(name, Tensor32::new(view.shape().to_vec(), values));
        }
        Ok(weights)
    }

    /// The convolutions `conv1.weight`, `conv2.weight`, … in order, for KSE.
    pub fn convolutions(&self) -> Result<Vec<NamedConv>, WeightsError> {
        let mut convs = Vec::new();
        for index in 1.. {
            let name = names::conv_weight(index);
            let Some(tensor) = self.get(&name) else { break };
            let [out, inputs, kh, kw] = <[usize; 4]>::try_from(tensor.shape.clone())
                .map_err(|shape| WeightsError::NotConvolution { name: name.clone(), shape })?;
            convs.push(NamedConv {
                weights: ConvWeights::new(out, inputs, kh * kw, tensor.values.clone())?,
                batch_norm: self.get(&names::bn_gamma(index)).is_some(),
                name: format!("conv{index}"),
            });
        }
        if convs.is_empty() {
            return Err(WeightsError::NoConvolutions);
        }
        Ok(convs)
    }
}

/// Names and shapes of every tensor of the architecture `config` describes, in layer order.
pub fn expected_tensors(config: &DnCnnConfig) -> Vec<(String, Vec<usize>)> {
    let mut expected = Vec::new();
    for layer in config.layers() {
        let (i, out) = (layer.index, layer.out_channels);
        expected.push((names::conv_weight(i), vec![out, layer.in_channels, KERNEL_SIZE, KERNEL_SIZE]));
        expected.push((names::conv_bias(i), vec![out]));
        if layer.batch_norm {
            for name in [names::bn_gamma(i), names::bn_beta(i), names::bn_running_mean(i), names::bn_running_var(i)] {
                expected.push((name, vec![out]));
            }
        }
    }
    expected
}

/// Lower-case hex sha256 of `bytes` (a model version's content hash).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One convolution of a stored model.
#[derive(Debug, Clone)]
pub struct NamedConv {
    pub name: String,
    pub weights: ConvWeights,
    pub batch_norm: bool,
}

/// The convolutions of the model at `path` (a model directory or a .safetensors file), in order.
pub fn load_convolutions(path: &Path) -> Result<Vec<NamedConv>, WeightsError> {
    let file = if path.is_dir() { path.join("model.safetensors") } else { path.to_path_buf() };
    let bytes =
        std::fs::read(&file).map_err(|source| WeightsError::Read { path: file.display().to_string(), source })?;
    ModelWeights::from_safetensors(&bytes)?.convolutions()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_weights(config: &DnCnnConfig) -> ModelWeights {
        let mut weights = ModelWeights::default();
        for (k, (name, shape)) in expected_tensors(config).into_iter().enumerate() {
            let len: usize = shape.iter().product();
            weights.insert(name, Tensor32::new(shape, (0..len).map(|v| (v + k) as f32 * 1e-3).collect()));
        }
        weights
    }

    #[test]
    fn safetensors_round_trip_is_exact_and_hash_is_stable() {
        let config = DnCnnConfig::scaled(0.25);
        let weights = small_weights(&config);
        weights.check(&config).expect("complete");
        let bytes = weights.to_safetensors().expect("serialise");
        let back = ModelWeights::from_safetensors(&bytes).expect("parse");
        assert_eq!(back, weights);
        assert_eq!(sha256_hex(&back.to_safetensors().expect("serialise")), sha256_hex(&bytes));
        assert_eq!(back.convolutions().expect("convs").len(), 8);
    }

    #[test]
    fn check_names_what_is_wrong() {
        let config = DnCnnConfig::scaled(0.25);
        let mut weights = small_weights(&config);
        weights.insert("bn3.gamma", Tensor32::filled(vec![5], 1.0));
        assert!(matches!(weights.check(&config), Err(WeightsError::WrongShape { name, .. }) if name == "bn3.gamma"));
        let mut weights = small_weights(&config);
        weights.insert("conv2.bias", Tensor32::filled(vec![16], f32::NAN));
        assert!(matches!(weights.check(&config), Err(WeightsError::NotFinite(name)) if name == "conv2.bias"));
    }
}
