//! Reading a model's convolution weights from safetensors, by the documented tensor names
//! (`conv1.weight` … `convN.weight`, shape [out, in, kh, kw], float32; `bnI.gamma` marks a
//! BatchNorm after conv I). Enough for KSE on any model in the layout of DESIGN.md §6,
//! including weights trained elsewhere.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::kse::{ConvWeights, ShapeError};

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
    let tensors = SafeTensors::deserialize(&bytes)?;
    let names = tensors.names();
    let mut convs = Vec::new();
    for index in 1.. {
        let name = format!("conv{index}.weight");
        if !names.contains(&name.as_str()) {
            break;
        }
        let view = tensors.tensor(&name)?;
        if view.dtype() != Dtype::F32 {
            return Err(WeightsError::DataType { name, dtype: view.dtype() });
        }
        let [out, inputs, kh, kw] = <[usize; 4]>::try_from(view.shape().to_vec())
            .map_err(|shape| WeightsError::NotConvolution { name: name.clone(), shape })?;
        let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        convs.push(NamedConv {
            weights: ConvWeights::new(out, inputs, kh * kw, values)?,
            batch_norm: names.contains(&format!("bn{index}.gamma").as_str()),
            name: format!("conv{index}"),
        });
    }
    if convs.is_empty() {
        return Err(WeightsError::NoConvolutions);
    }
    Ok(convs)
}
