//! Targeted Gradient Descent gates (docs/science.md §4): the identity going forward, the
//! incoming gradient multiplied by a channel mask going back, so that kept channels neither
//! change nor pass gradient to earlier layers.
//!
//! The paper puts a gate after each convolution and after each BatchNorm. One gate per layer,
//! after its last per-channel operation (the BatchNorm, or conv1 itself), blocks the same
//! gradients: BatchNorm mixes nothing across channels, so a kept channel that receives zero
//! gradient after it passes exactly zero back to its convolution, and a second gate there
//! would only multiply zeros. The tests compare the gradients with kept channels held
//! constant at both of the paper's points.

use std::sync::Mutex;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// The gates of a network's hidden layers (conv1..conv7).
pub struct TgdGates<B: Backend> {
    /// Per hidden layer, which output channels are retrained; `None` leaves it ungated.
    retrain: Vec<Option<Vec<bool>>>,
    /// Per hidden layer, its mask spread over the whole activation of the last shape seen.
    /// On the CPU backend an elementwise product of two same-shape tensors is about ten times
    /// faster than one that broadcasts a `[1, C, 1, 1]` mask, and a training run keeps one
    /// batch shape, so each mask is built once.
    spread: Mutex<Vec<Option<Tensor<B, 4>>>>,
}

impl<B: Backend> TgdGates<B> {
    /// No gates: plain training.
    pub fn none() -> Self {
        Self::new(Vec::new())
    }

    /// Gates from each hidden layer's retrained channels (`None`: no gate).
    pub fn new(retrain: Vec<Option<Vec<bool>>>) -> Self {
        let spread = Mutex::new(vec![None; retrain.len()]);
        Self { retrain, spread }
    }

    /// `y` going forward; dL/dy times the layer's mask going back. With d = detach(y) this is
    /// (y − d)·m + d: exactly y (y − d is exactly zero), and only the first term is tracked.
    pub fn apply(&self, layer: usize, y: Tensor<B, 4>) -> Tensor<B, 4> {
        let Some(mask) = self.mask(layer, &y) else { return y };
        let constant = y.clone().detach();
        y.sub(constant.clone()).mul(mask).add(constant)
    }

    /// Layer `layer`'s mask (1 = retrained, 0 = kept) in `y`'s shape, built on first use.
    fn mask(&self, layer: usize, y: &Tensor<B, 4>) -> Option<Tensor<B, 4>> {
        let retrain = self.retrain.get(layer)?.as_ref()?;
        let dims = y.dims();
        // A poisoned lock only means another step panicked; the cache is still consistent.
        let mut spread = self.spread.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mask) = &spread[layer]
            && mask.dims() == dims
        {
            return Some(mask.clone());
        }
        let [batch, channels, height, width] = dims;
        assert_eq!(channels, retrain.len(), "layer {layer}: a gate of {} channels on {channels}", retrain.len());
        let per_channel = height * width;
        let one_image: Vec<f32> =
            retrain.iter().flat_map(|r| std::iter::repeat_n(if *r { 1.0 } else { 0.0 }, per_channel)).collect();
        let values: Vec<f32> = one_image.iter().copied().cycle().take(batch * one_image.len()).collect();
        let mask = Tensor::from_data(TensorData::new(values, dims), &y.device());
        spread[layer] = Some(mask.clone());
        Some(mask)
    }
}

impl<B: Backend> Clone for TgdGates<B> {
    fn clone(&self) -> Self {
        Self::new(self.retrain.clone())
    }
}

impl<B: Backend> std::fmt::Debug for TgdGates<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TgdGates").field("retrain", &self.retrain).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::TgdGates;
    use crate::science::model::backend::CpuTrainingBackend as Ad;

    #[test]
    fn a_gate_is_exactly_the_identity_forward_and_masks_the_gradient_back() {
        let device = Default::default();
        let gates = TgdGates::<Ad>::new(vec![None, Some(vec![true, false, true])]);
        for batch in [2, 3] {
            let y = Tensor::<Ad, 4>::random([batch, 3, 4, 5], Distribution::Uniform(-2.0, 2.0), &device).require_grad();
            let gated = gates.apply(1, y.clone());
            assert_eq!(gated.clone().inner().into_data(), y.clone().inner().into_data(), "identity forward");
            let weights = Tensor::<Ad, 4>::random([batch, 3, 4, 5], Distribution::Uniform(0.5, 1.5), &device);
            let grads = gated.mul(weights.clone()).sum().backward();
            let gradient = y.grad(&grads).expect("a gradient").into_data().to_vec::<f32>().expect("f32");
            let expected = weights.inner().into_data().to_vec::<f32>().expect("f32");
            for (i, (g, w)) in gradient.iter().zip(&expected).enumerate() {
                let channel = (i / 20) % 3;
                assert_eq!(*g, if channel == 1 { 0.0 } else { *w }, "element {i}");
            }
            let ungated = gates.apply(0, y.clone());
            assert_eq!(ungated.inner().into_data(), y.inner().into_data());
        }
    }
}
