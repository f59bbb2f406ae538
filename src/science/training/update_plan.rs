//! Which parameters a round may change, and how (docs/science.md §4).
//!
//! A plan holds, per convolution, the output channels that are retrained. With the paper's
//! TGD layer semantics the plan also gates the forward pass ([`TgdGates`]), so kept channels
//! pass no gradient to earlier layers; with the parameter-mask variant only the parameter
//! gradients of kept channels are zeroed. In both, the (optional) L2 regulariser is masked
//! the same way, layers with nothing to retrain are left out of the optimizer step, and the
//! BatchNorm running statistics of kept channels are restored after every step.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Tensor, TensorData};

use crate::science::model::network::{DnCnn, TgdGates};
use crate::science::model::tgd_mask::NetworkMask;

/// How the retrain mask acts on training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateRule {
    /// The paper's TGD layers: identity forward, masked dL/dY backward (the default).
    TgdLayer,
    /// Parameter gradients of kept channels zeroed; dL/dY still flows through them.
    ParameterMask,
}

/// Per convolution (conv1 first), which output channels are retrained.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    pub retrain: Vec<Vec<bool>>,
    pub rule: UpdateRule,
}

impl UpdatePlan {
    /// The TGD plan from KSE masks (the last layer is never retrained there).
    pub fn from_mask(mask: &NetworkMask, rule: UpdateRule) -> Self {
        Self { retrain: mask.layers.iter().map(|l| l.retrain.clone()).collect(), rule }
    }

    /// Every parameter trained (a base model, or the paper's v2-net).
    pub fn everything<B: Backend>(network: &DnCnn<B>) -> Self {
        let retrain = network.convolutions().iter().map(|c| vec![true; c.weight.dims()[0]]).collect();
        Self { retrain, rule: UpdateRule::ParameterMask }
    }

    /// The paper's FT-net: only the last `layers` convolutions (all their channels) trained.
    pub fn last_layers<B: Backend>(network: &DnCnn<B>, layers: usize) -> Self {
        let depth = network.depth();
        let retrain = network
            .convolutions()
            .iter()
            .enumerate()
            .map(|(i, c)| vec![i + layers >= depth; c.weight.dims()[0]])
            .collect();
        Self { retrain, rule: UpdateRule::ParameterMask }
    }

    fn layer_is_whole(&self, layer: usize) -> bool {
        self.retrain.get(layer).is_some_and(|r| r.iter().all(|x| *x))
    }

    fn layer_is_untouched(&self, layer: usize) -> bool {
        self.retrain.get(layer).is_none_or(|r| r.iter().all(|x| !*x))
    }

    /// The TGD gates for the forward pass (none for the parameter-mask rule).
    pub fn gates<B: Backend>(&self) -> TgdGates<B> {
        if self.rule != UpdateRule::TgdLayer {
            return TgdGates::none();
        }
        let hidden = self.retrain.len().saturating_sub(1);
        TgdGates::new(self.retrain[..hidden].iter().cloned().map(Some).collect())
    }

    /// Keeps only the gradients the plan allows: parameters of kept channels get exactly
    /// zero (plus the L2 term `weight_decay · θ` on retrained ones), and layers with
    /// nothing to retrain are dropped so the optimizer never touches them.
    pub fn mask_gradients<B: AutodiffBackend>(
        &self,
        network: &DnCnn<B>,
        mut grads: GradientsParams,
        weight_decay: f64,
    ) -> GradientsParams {
        let mut norms = network.batch_norms().iter();
        for (i, conv) in network.convolutions().iter().enumerate() {
            let norm = if i > 0 && i + 1 < network.depth() { norms.next() } else { None };
            let retrain = self.retrain.get(i).map(Vec::as_slice).unwrap_or(&[]);
            let untouched = self.layer_is_untouched(i);
            let whole = self.layer_is_whole(i);
            mask_param(&mut grads, &conv.weight, retrain, untouched, whole, weight_decay);
            if let Some(bias) = &conv.bias {
                mask_param(&mut grads, bias, retrain, untouched, whole, weight_decay);
            }
            if let Some(norm) = norm {
                mask_param(&mut grads, &norm.gamma, retrain, untouched, whole, weight_decay);
                mask_param(&mut grads, &norm.beta, retrain, untouched, whole, weight_decay);
            }
        }
        grads
    }

    /// Puts back the parent's running statistics of every kept BatchNorm channel.
    pub fn restore_running_statistics<B: Backend>(&self, network: &mut DnCnn<B>, parent: &RunningStatistics<B>) {
        let current = network.running_statistics();
        for (k, (mean, var)) in current.into_iter().enumerate() {
            let layer = k + 1;
            let Some((parent_mean, parent_var)) = parent.per_layer.get(k) else { continue };
            if self.layer_is_whole(layer) {
                continue;
            }
            let retrain = &self.retrain[layer];
            let kept = kept_mask::<B, 1>(retrain, [retrain.len()], &mean.device());
            let mean = mean.mask_where(kept.clone(), parent_mean.clone());
            let var = var.mask_where(kept, parent_var.clone());
            network.set_running_statistics(k, mean, var);
        }
    }
}

/// A copy of every BatchNorm layer's running mean and variance.
#[derive(Debug, Clone)]
pub struct RunningStatistics<B: Backend> {
    per_layer: Vec<(Tensor<B, 1>, Tensor<B, 1>)>,
}

impl<B: Backend> RunningStatistics<B> {
    pub fn of(network: &DnCnn<B>) -> Self {
        Self { per_layer: network.running_statistics() }
    }
}

/// True where a channel is kept, broadcast along the parameter's other axes.
fn kept_mask<B: Backend, const D: usize>(
    retrain: &[bool],
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D, Bool> {
    let per_channel: usize = shape[1..].iter().product();
    let values: Vec<bool> = retrain.iter().flat_map(|r| std::iter::repeat_n(!*r, per_channel)).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn mask_param<B: AutodiffBackend, const D: usize>(
    grads: &mut GradientsParams,
    param: &Param<Tensor<B, D>>,
    retrain: &[bool],
    untouched: bool,
    whole: bool,
    weight_decay: f64,
) {
    let Some(mut grad) = grads.remove::<B::InnerBackend, D>(param.id) else { return };
    if untouched {
        return;
    }
    if weight_decay != 0.0 {
        grad = grad.add(param.val().inner().mul_scalar(weight_decay));
    }
    if !whole {
        let kept = kept_mask::<B::InnerBackend, D>(retrain, grad.dims(), &grad.device());
        grad = grad.mask_fill(kept, 0.0);
    }
    grads.register::<B::InnerBackend, D>(param.id, grad);
}
