//! Targeted Gradient Descent masks (docs/science.md §4): which kernels a round retrains.
//!
//! For layer i (2..=L), input channels with KSE below φ are "meaningless"; the kernels of
//! layer i−1 that produce them — output channel c of layer i−1: its filter, bias and, for
//! layers with BatchNorm, γ and β — are retrained. Everything else is kept bit for bit.
//! The last layer (the noise classifier) is never retrained.

use super::kse::{ConvWeights, LayerKse, layer_kse};

/// One convolution of the network with what the mask report needs.
#[derive(Debug, Clone)]
pub struct MaskedLayer<'a> {
    pub name: &'a str,
    pub weights: &'a ConvWeights,
    /// Whether BatchNorm follows (γ and β per output channel are retrained with the kernel).
    pub batch_norm: bool,
}

/// The mask of one layer: which of its output channels are retrained.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerMask {
    pub layer: String,
    /// `retrain[c]`: output channel c of this layer is retrained.
    pub retrain: Vec<bool>,
    /// KSE of each output channel, scored as an input channel of the next layer (the
    /// value compared with φ); empty for the last layer.
    pub kse: Vec<f64>,
    pub channels_retrained: usize,
    pub parameters: usize,
    pub parameters_retrained: usize,
}

/// Masks of a whole network and the fraction of parameters a round retrains.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NetworkMask {
    pub phi: f64,
    pub layers: Vec<LayerMask>,
    pub fraction_retrained: f64,
}

fn parameters_per_output_channel(layer: &MaskedLayer<'_>) -> usize {
    layer.weights.in_channels * layer.weights.kernel_size + 1 + if layer.batch_norm { 2 } else { 0 }
}

/// The masks of a model's stored convolutions (as [`super::weights::ModelWeights::convolutions`] gives them).
pub fn mask_of_convolutions(convs: &[super::weights::NamedConv], phi: f64) -> NetworkMask {
    let layers: Vec<MaskedLayer<'_>> =
        convs.iter().map(|c| MaskedLayer { name: &c.name, weights: &c.weights, batch_norm: c.batch_norm }).collect();
    network_mask(&layers, phi)
}

/// Computes the masks for threshold `phi` from the KSE of each layer's successor.
pub fn network_mask(layers: &[MaskedLayer<'_>], phi: f64) -> NetworkMask {
    let scores: Vec<LayerKse> = layers.iter().map(|l| layer_kse(l.weights)).collect();
    let mut masks = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let per_channel = parameters_per_output_channel(layer);
        let (retrain, kse): (Vec<bool>, Vec<f64>) = match scores.get(i + 1) {
            // The next layer's input channels are this layer's output channels.
            Some(next) if next.score.len() == layer.weights.out_channels => {
                (next.score.iter().map(|s| *s < phi).collect(), next.score.clone())
            }
            // The last layer, or a shape that does not chain: kept whole.
            _ => (vec![false; layer.weights.out_channels], Vec::new()),
        };
        let channels_retrained = retrain.iter().filter(|r| **r).count();
        masks.push(LayerMask {
            layer: layer.name.to_owned(),
            channels_retrained,
            parameters: per_channel * layer.weights.out_channels,
            parameters_retrained: per_channel * channels_retrained,
            retrain,
            kse,
        });
    }
    let total: usize = masks.iter().map(|m| m.parameters).sum();
    let retrained: usize = masks.iter().map(|m| m.parameters_retrained).sum();
    NetworkMask { phi, fraction_retrained: retrained as f64 / total.max(1) as f64, layers: masks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_layer_scores_choose_this_layers_kernels_and_the_last_layer_is_kept() {
        // conv1: 3 outputs from 1 input; conv2: 2 outputs from those 3 inputs, where input
        // channel 1 has all-zero kernels (lowest KSE) and channel 2 the largest.
        let conv1 = ConvWeights::new(3, 1, 9, (0..27).map(|v| v as f32 / 10.0).collect()).expect("shape");
        let mut values = vec![0.0f32; 2 * 3 * 9];
        for n in 0..2 {
            for k in 0..9 {
                values[(n * 3) * 9 + k] = 1.5 + (n * 9 + k) as f32 * 0.01;
                values[(n * 3 + 2) * 9 + k] = 2.0 + (k as f32) * (n as f32 + 1.0);
            }
        }
        let conv2 = ConvWeights::new(2, 3, 9, values).expect("shape");
        let layers = [
            MaskedLayer { name: "conv1", weights: &conv1, batch_norm: false },
            MaskedLayer { name: "conv2", weights: &conv2, batch_norm: false },
        ];
        let mask = network_mask(&layers, 0.3);
        assert_eq!(mask.layers[0].retrain, vec![false, true, false], "conv1's channel 1 feeds the empty conv2 input");
        assert_eq!(mask.layers[1].channels_retrained, 0, "the last layer is never retrained");
        assert_eq!(mask.layers[0].parameters_retrained, 9 + 1);
        let total = (3 * 10 + 2 * (27 + 1)) as f64;
        assert!((mask.fraction_retrained - 10.0 / total).abs() < 1e-12);
    }
}
