//! The network's configuration (docs/science.md §1), saved as `config.json` next to the weights
//! so that a model directory says what architecture its tensors belong to.

use burn::config::Config;

/// The paper's widths for conv1..conv7; conv8 has one output per input slice.
pub const PAPER_HIDDEN_WIDTHS: [usize; 7] = [64, 64, 128, 128, 128, 256, 256];

/// Configuration of the 2.5D DnCNN: `input_slices` consecutive axial slices in, the same
/// slices denoised out, eight 3×3 convolutions, BatchNorm after conv2..conv7.
#[derive(Config, Debug, PartialEq)]
pub struct DnCnnConfig {
    /// Consecutive axial slices seen at once (channels in and out).
    #[config(default = 3)]
    pub input_slices: usize,
    /// Output channels of conv1..conv7 before the width multiplier.
    #[config(default = "PAPER_HIDDEN_WIDTHS.to_vec()")]
    pub hidden_widths: Vec<usize>,
    /// Scales every hidden width (rounded, at least 1): 1.0 is the paper's network, 0.25
    /// the small model used by tests and quick benchmarks.
    #[config(default = 1.0)]
    pub width_multiplier: f64,
    /// BatchNorm ε, as PyTorch's default so imported models behave the same.
    #[config(default = 1e-5)]
    pub batch_norm_epsilon: f64,
    /// Weight of the newest batch in the BatchNorm running statistics (PyTorch convention).
    #[config(default = 0.1)]
    pub batch_norm_momentum: f64,
}

/// One convolution of the network as built from a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerShape {
    /// 1-based layer number, as in the tensor names (`conv3.weight`).
    pub index: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Whether BatchNorm (and ReLU) follows; conv1 has ReLU only, the last layer nothing.
    pub batch_norm: bool,
}

/// Side of the square kernels of every layer.
pub const KERNEL_SIZE: usize = 3;

impl LayerShape {
    /// Trainable parameters: kernels, biases and BatchNorm γ/β (running statistics excluded).
    pub fn parameters(&self) -> usize {
        let conv = self.out_channels * (self.in_channels * KERNEL_SIZE * KERNEL_SIZE + 1);
        conv + if self.batch_norm { 2 * self.out_channels } else { 0 }
    }
}

impl DnCnnConfig {
    /// A config with the paper's widths scaled by `multiplier`.
    pub fn scaled(multiplier: f64) -> Self {
        Self::new().with_width_multiplier(multiplier)
    }

    /// Output channels of every convolution, conv1 first, after the multiplier.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> =
            self.hidden_widths.iter().map(|w| ((*w as f64 * self.width_multiplier).round() as usize).max(1)).collect();
        widths.push(self.input_slices);
        widths
    }

    /// Every convolution's shape, conv1 first.
    pub fn layers(&self) -> Vec<LayerShape> {
        let widths = self.widths();
        let last = widths.len();
        let mut inputs = self.input_slices;
        widths
            .into_iter()
            .enumerate()
            .map(|(i, out)| {
                let layer = LayerShape {
                    index: i + 1,
                    in_channels: inputs,
                    out_channels: out,
                    batch_norm: i + 1 > 1 && i + 1 < last,
                };
                inputs = out;
                layer
            })
            .collect()
    }

    /// Trainable parameters: kernels, biases and BatchNorm γ/β (running statistics excluded).
    pub fn parameter_count(&self) -> usize {
        self.layers().iter().map(LayerShape::parameters).sum()
    }

    /// Multiply-adds ×2 per output pixel of one window (all layers), for FLOP figures.
    pub fn flops_per_pixel(&self) -> f64 {
        self.layers().iter().map(|l| 2.0 * (l.in_channels * l.out_channels * KERNEL_SIZE * KERNEL_SIZE) as f64).sum()
    }

    /// Checks what a loaded config.json could get wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.input_slices == 0 || self.input_slices.is_multiple_of(2) {
            return Err(ConfigError::InputSlices(self.input_slices));
        }
        if self.hidden_widths.len() < 2 || self.hidden_widths.contains(&0) {
            return Err(ConfigError::Widths(self.hidden_widths.clone()));
        }
        if !(self.width_multiplier.is_finite() && self.width_multiplier > 0.0) {
            return Err(ConfigError::Multiplier(self.width_multiplier));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("input_slices is {0}; the window needs an odd number of slices (3 in the paper)")]
    InputSlices(usize),
    #[error("hidden_widths {0:?}: at least two hidden layers, none of width 0")]
    Widths(Vec<usize>),
    #[error("width_multiplier {0} must be a positive number")]
    Multiplier(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_network_shapes_and_size() {
        let config = DnCnnConfig::new();
        assert_eq!(config.widths(), vec![64, 64, 128, 128, 128, 256, 256, 3]);
        let layers = config.layers();
        assert_eq!(layers.len(), 8);
        assert_eq!((layers[0].in_channels, layers[0].batch_norm), (3, false));
        assert!(layers[1..7].iter().all(|l| l.batch_norm));
        assert_eq!((layers[7].in_channels, layers[7].out_channels, layers[7].batch_norm), (256, 3, false));
        // ≈ 2.6 MFLOP per pixel of a window (docs/interoperability.md §7).
        assert!((config.flops_per_pixel() / 1e6 - 2.6).abs() < 0.1, "{}", config.flops_per_pixel());
    }

    #[test]
    fn multiplier_scales_hidden_widths_only() {
        let config = DnCnnConfig::scaled(0.25);
        assert_eq!(config.widths(), vec![16, 16, 32, 32, 32, 64, 64, 3]);
        assert!(config.parameter_count() < DnCnnConfig::new().parameter_count() / 10);
    }
}
