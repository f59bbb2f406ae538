//! The KSE threshold sweep (the paper's Fig. 4): for each φ, which kernels of a trained
//! network KSE flags as meaningless, what share of the parameters they hold, and what
//! the network does when they are dropped. Dropping a flagged kernel (output channel c of
//! layer i−1) zeroes its filter, bias and BatchNorm γ and β, so the feature map it makes is
//! zero after ReLU and layer i sees nothing on input channel c.

use crate::science::model::directory::StoredModel;
use crate::science::model::tgd_mask::{NetworkMask, mask_of_convolutions};
use crate::science::model::weights::{ModelWeights, Tensor32, WeightsError, names};

/// The paper's share of parameters flagged at φ = 0.3 / 0.4 / 0.5 / 0.6 (docs/science.md §4).
pub const PAPER_FLAGGED_PERCENT: [(f64, f64); 4] = [(0.3, 51.4), (0.4, 51.6), (0.5, 53.0), (0.6, 67.3)];

/// The mask KSE gives `model` at `phi`.
pub fn flagged(model: &StoredModel, phi: f64) -> Result<NetworkMask, WeightsError> {
    Ok(mask_of_convolutions(&model.weights.convolutions()?, phi))
}

/// `model` with every kernel `mask` flags set to zero (filter, bias, BatchNorm γ and β).
pub fn drop_flagged(model: &StoredModel, mask: &NetworkMask) -> Result<StoredModel, WeightsError> {
    let mut weights = ModelWeights::default();
    for (name, tensor) in model.weights.iter() {
        weights.insert(name.clone(), tensor.clone());
    }
    for (index, layer) in mask.layers.iter().enumerate().map(|(i, l)| (i + 1, l)) {
        let dropped: Vec<usize> = layer.retrain.iter().enumerate().filter(|(_, r)| **r).map(|(c, _)| c).collect();
        if dropped.is_empty() {
            continue;
        }
        for name in [names::conv_weight(index), names::conv_bias(index), names::bn_gamma(index), names::bn_beta(index)]
        {
            let Some(tensor) = model.weights.get(&name) else { continue };
            let per_channel = tensor.values.len() / tensor.shape.first().copied().unwrap_or(1).max(1);
            let mut values = tensor.values.clone();
            for channel in &dropped {
                values[channel * per_channel..(channel + 1) * per_channel].fill(0.0);
            }
            weights.insert(name, Tensor32::new(tensor.shape.clone(), values));
        }
    }
    StoredModel::new(model.config.clone(), weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::model::config::DnCnnConfig;
    use crate::science::model::pseudo_random::pseudo_random_model;

    #[test]
    fn dropping_zeroes_exactly_the_flagged_channels() {
        let config = DnCnnConfig::scaled(0.125);
        let model = pseudo_random_model(config, 3).expect("model");
        let mask = flagged(&model, 0.5).expect("mask");
        let layer = mask.layers.iter().position(|l| l.channels_retrained > 0).expect("something is flagged at 0.5");
        let channel = mask.layers[layer].retrain.iter().position(|r| *r).expect("a flagged channel");
        let kept = mask.layers[layer].retrain.iter().position(|r| !*r).expect("a kept channel");
        let dropped = drop_flagged(&model, &mask).expect("dropped");
        let weight = dropped.weights.get(&names::conv_weight(layer + 1)).expect("weight");
        let per_channel = weight.values.len() / weight.shape[0];
        assert!(weight.values[channel * per_channel..(channel + 1) * per_channel].iter().all(|v| *v == 0.0));
        let original = model.weights.get(&names::conv_weight(layer + 1)).expect("original");
        assert_eq!(
            weight.values[kept * per_channel..(kept + 1) * per_channel],
            original.values[kept * per_channel..(kept + 1) * per_channel]
        );
        let last = mask.layers.len();
        assert_eq!(dropped.weights.get(&names::conv_weight(last)), model.weights.get(&names::conv_weight(last)));
    }
}
