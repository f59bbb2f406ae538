//! The network over a whole volume in burn, in the same 3-slice windows as inference
//! ([`crate::science::window`]): for validation in rounds, training reports and the
//! evaluation, which must not depend on the inference runtime, and on any burn backend.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::backend::CpuBackend;
use super::directory::StoredModel;
use super::network::DnCnn;
use super::weights::WeightsError;
use crate::science::image::Image3;
use crate::science::window::{Volume, WindowBatch, WindowError, denoise_in_windows};

/// Windows per network call.
const WINDOWS_PER_CALL: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum BurnDenoiseError {
    #[error("the model's weights: {0}")]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Window(#[from] WindowError),
    /// burn's data error implements no `Error`; its description is kept.
    #[error("the network output is not f32: {0}")]
    OutputNotF32(String),
}

/// The network's output for a whole volume (3-slice windows, edges replicated), on the CPU.
pub fn denoise_with_burn(model: &StoredModel, image: &Image3) -> Result<Image3, BurnDenoiseError> {
    let volume = Volume::new(image.grid.slices, image.grid.size, image.grid.size, image.data.clone())?;
    let output = denoise_volume::<CpuBackend>(model, &volume, WINDOWS_PER_CALL, &Default::default())?;
    Ok(Image3 { grid: image.grid, data: output.into_data() })
}

/// `model` over `volume` on backend `B`, `batch` windows per call.
pub fn denoise_volume<B: Backend>(
    model: &StoredModel,
    volume: &Volume,
    batch: usize,
    device: &B::Device,
) -> Result<Volume, BurnDenoiseError> {
    let network = DnCnn::<B>::from_weights(&model.config, &model.weights, device)?;
    denoise_in_windows(volume, model.config.input_slices, batch, |windows: WindowBatch| {
        let shape = windows.shape();
        let input = Tensor::<B, 4>::from_data(TensorData::new(windows.into_data(), shape), device);
        // Reading the values back waits for the device.
        let values = network
            .forward(input)
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| BurnDenoiseError::OutputNotF32(format!("{e:?}")))?;
        Ok(WindowBatch::new(shape[0], shape[1], shape[2], shape[3], values)?)
    })
}
