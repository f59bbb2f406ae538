//! One network being trained: Adam steps on MSE under an [`UpdatePlan`].
//!
//! Noise2Noise pairs, patch sampling and rounds build on this; here a step takes a batch of
//! inputs and targets, computes the loss through the TGD-gated forward pass, masks the
//! gradients, steps Adam (no decoupled weight decay, so exactly-zero gradients leave a
//! parameter bit-identical) and restores the running statistics of kept BatchNorm channels.

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::module::avg_pool2d;
use burn::tensor::{ElementConversion, Tensor};

use super::update_plan::{RunningStatistics, UpdatePlan};
use crate::science::model::network::{DnCnn, TgdGates};

/// Optimiser settings of a training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerSettings {
    /// Adam's learning rate (the paper: 1e-3).
    pub learning_rate: f64,
    /// Coefficient of the L2 regulariser, masked like the gradients (0 disables it).
    pub weight_decay: f64,
    /// How BatchNorm normalises during the steps.
    pub batch_statistics: BatchStatistics,
    /// Coefficient of the group-lasso term on every input channel of conv2 and up (see
    /// [`channel_group_lasso`]); 0 disables it.
    pub channel_sparsity: f64,
}

impl Default for OptimizerSettings {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            weight_decay: 0.0,
            batch_statistics: BatchStatistics::PerBatch,
            channel_sparsity: 0.0,
        }
    }
}

/// What BatchNorm normalises with while a network trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatistics {
    /// Each batch's own statistics, the running ones following them (training from scratch).
    #[default]
    PerBatch,
    /// The running statistics, as inference does; they do not change.
    Frozen,
}

/// A network, its optimiser state and the plan restricting what changes.
pub struct Trainer<B: AutodiffBackend> {
    network: Option<DnCnn<B>>,
    optimizer: OptimizerAdaptor<Adam, DnCnn<B>, B>,
    plan: UpdatePlan,
    gates: TgdGates<B>,
    parent_statistics: RunningStatistics<B>,
    settings: OptimizerSettings,
}

impl<B: AutodiffBackend> Trainer<B> {
    pub fn new(network: DnCnn<B>, plan: UpdatePlan, settings: OptimizerSettings) -> Self {
        let optimizer = AdamConfig::new().init::<B, DnCnn<B>>();
        let gates = plan.gates();
        let network = network.own_running_statistics();
        let parent_statistics = RunningStatistics::of(&network);
        Self { network: Some(network), optimizer, plan, gates, parent_statistics, settings }
    }

    /// The network as it stands.
    pub fn network(&self) -> &DnCnn<B> {
        // Only `step` takes it out, and it always puts it back.
        self.network.as_ref().unwrap_or_else(|| unreachable!("the network is always present between steps"))
    }

    pub fn into_network(mut self) -> DnCnn<B> {
        self.network.take().unwrap_or_else(|| unreachable!("the network is always present between steps"))
    }

    /// Changes the learning rate of the next steps (a schedule); Adam's moments are kept.
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.settings.learning_rate = learning_rate;
    }

    pub fn plan(&self) -> &UpdatePlan {
        &self.plan
    }

    /// The loss and the gradients the plan lets through, without stepping.
    pub fn gradients(&self, input: Tensor<B, 4>, target: Tensor<B, 4>) -> (f64, GradientsParams) {
        self.weighted_gradients(input, target, None, None)
    }

    fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let network = self.network();
        match self.settings.batch_statistics {
            BatchStatistics::PerBatch => network.forward_gated(input, &self.gates),
            BatchStatistics::Frozen => network.forward_gated_frozen_statistics(input, &self.gates),
        }
    }

    /// As [`Self::gradients`], each voxel's squared error weighted by `weight` when given,
    /// plus the `anchor` term when given.
    fn weighted_gradients(
        &self,
        input: Tensor<B, 4>,
        target: Tensor<B, 4>,
        weight: Option<Tensor<B, 4>>,
        anchor: Option<AnchorBatch<B>>,
    ) -> (f64, GradientsParams) {
        let network = self.network();
        let output = self.forward(input);
        let loss = match weight {
            Some(weight) => weighted_mse(output, target, weight),
            None => mse(output, target),
        };
        // The reported loss is the data term alone, so runs with and without the penalty compare.
        let value = loss.clone().into_scalar().elem::<f64>();
        let loss = match anchor {
            Some(anchor) => {
                let held = block_mse(self.forward(anchor.input), anchor.reference, anchor.block);
                loss.add(held.mul_scalar(anchor.weight))
            }
            None => loss,
        };
        let loss = if self.settings.channel_sparsity > 0.0 {
            loss.add(channel_group_lasso(network).mul_scalar(self.settings.channel_sparsity))
        } else {
            loss
        };
        let grads = GradientsParams::from_grads(loss.backward(), network);
        (value, self.plan.mask_gradients(network, grads, self.settings.weight_decay))
    }

    /// One optimisation step on a batch; returns the batch's loss before the step.
    pub fn step(&mut self, input: Tensor<B, 4>, target: Tensor<B, 4>) -> f64 {
        self.step_with(input, target, None, None)
    }

    /// One step on the loss of [`weighted_mse`] when `weight` is given (else plain MSE).
    pub fn step_weighted(&mut self, input: Tensor<B, 4>, target: Tensor<B, 4>, weight: Option<Tensor<B, 4>>) -> f64 {
        self.step_with(input, target, weight, None)
    }

    /// One step on plain MSE plus the [`AnchorBatch`] term; returns the MSE alone.
    pub fn step_anchored(&mut self, input: Tensor<B, 4>, target: Tensor<B, 4>, anchor: AnchorBatch<B>) -> f64 {
        self.step_with(input, target, None, Some(anchor))
    }

    fn step_with(
        &mut self,
        input: Tensor<B, 4>,
        target: Tensor<B, 4>,
        weight: Option<Tensor<B, 4>>,
        anchor: Option<AnchorBatch<B>>,
    ) -> f64 {
        let (loss, grads) = self.weighted_gradients(input, target, weight, anchor);
        let network = self.take_network();
        let mut network = self.optimizer.step(self.settings.learning_rate, network, grads);
        self.plan.restore_running_statistics(&mut network, &self.parent_statistics);
        self.network = Some(network);
        loss
    }

    /// Replaces the network by `change(network)`, which must keep its parameter ids (a
    /// projection after a step, for instance), so the optimiser's state still applies.
    pub fn map_network(&mut self, change: impl FnOnce(DnCnn<B>) -> DnCnn<B>) {
        let network = self.take_network();
        self.network = Some(change(network));
    }

    fn take_network(&mut self) -> DnCnn<B> {
        self.network.take().unwrap_or_else(|| unreachable!("the network is always present between steps"))
    }
}

/// Sum over conv2 and up of the L2 norms of each input channel's kernels (`W[:, c]`): a
/// group lasso that drives whole input channels towards zero. A channel that its consumer
/// ignores is one KSE scores low (its kernels' L1 sum is small) and one that can be dropped
/// or retrained at no cost to what the network does; the base model needs such channels for
/// TGD to have room (docs/learning.md). conv1's inputs are the image slices and stay free.
pub fn channel_group_lasso<B: burn::tensor::backend::Backend>(network: &DnCnn<B>) -> Tensor<B, 1> {
    let mut total: Option<Tensor<B, 1>> = None;
    for conv in network.convolutions().iter().skip(1) {
        let weight = conv.weight.val();
        let norms = weight.powi_scalar(2).sum_dim(0).sum_dim(2).sum_dim(3).add_scalar(1e-12).sqrt().sum();
        total = Some(match total {
            Some(sum) => sum.add(norms),
            None => norms,
        });
    }
    total.unwrap_or_else(|| Tensor::zeros([1], &Default::default()))
}

/// A second batch of a step: patches whose output must keep, block by block, the means of a
/// reference (a round's parent denoising the series that is used; see
/// `science::training::fine_tune`).
pub struct AnchorBatch<B: burn::tensor::backend::Backend> {
    pub input: Tensor<B, 4>,
    /// What the output's block means are held to.
    pub reference: Tensor<B, 4>,
    /// Side of the square blocks, in pixels.
    pub block: usize,
    /// Coefficient of the term in the loss.
    pub weight: f64,
}

/// Mean squared difference of the means over `block`×`block` squares of each slice (squares
/// that do not fit at the edge are left out): zero when `output` keeps every block's mean
/// of `reference`, whatever it does inside a block.
pub fn block_mse<B: burn::tensor::backend::Backend>(
    output: Tensor<B, 4>,
    reference: Tensor<B, 4>,
    block: usize,
) -> Tensor<B, 1> {
    let pool = |x: Tensor<B, 4>| avg_pool2d(x, [block, block], [block, block], [0, 0], true, false);
    mse(pool(output), pool(reference))
}

/// Mean squared error.
pub fn mse<B: burn::tensor::backend::Backend>(output: Tensor<B, 4>, target: Tensor<B, 4>) -> Tensor<B, 1> {
    output.sub(target).powi_scalar(2).mean()
}

/// Mean over voxels of `weight` × squared error: with weight 1 everywhere, [`mse`].
pub fn weighted_mse<B: burn::tensor::backend::Backend>(
    output: Tensor<B, 4>,
    target: Tensor<B, 4>,
    weight: Tensor<B, 4>,
) -> Tensor<B, 1> {
    output.sub(target).powi_scalar(2).mul(weight).mean()
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::{block_mse, mse, weighted_mse};
    use crate::science::model::backend::CpuBackend;

    fn tensor(values: [f32; 4]) -> Tensor<CpuBackend, 4> {
        Tensor::from_data(TensorData::new(values.to_vec(), [1, 1, 2, 2]), &Default::default())
    }

    #[test]
    fn weighted_mse_weights_each_squared_error() {
        let (output, target) = (tensor([1.0, 2.0, 3.0, 4.0]), tensor([0.0, 0.0, 3.0, 6.0]));
        // Squared errors 1, 4, 0, 4; weights 1, 10, 1, 1: (1 + 40 + 0 + 4) / 4.
        let weighted = weighted_mse(output.clone(), target.clone(), tensor([1.0, 10.0, 1.0, 1.0]));
        assert_eq!(weighted.into_scalar(), 11.25);
        let plain = weighted_mse(output.clone(), target.clone(), tensor([1.0; 4])).into_scalar();
        assert_eq!(plain, mse(output, target).into_scalar());
    }

    #[test]
    fn block_mse_sees_block_means_only() {
        let reference = tensor([1.0, 2.0, 3.0, 4.0]);
        // The same mean (2.5) spread differently inside the one 2×2 block: nothing to pay.
        let reshuffled = block_mse(tensor([4.0, 1.0, 2.0, 3.0]), reference.clone(), 2).into_scalar();
        assert_eq!(reshuffled, 0.0);
        // Every voxel 1 higher moves the mean by 1.
        assert_eq!(block_mse(tensor([2.0, 3.0, 4.0, 5.0]), reference.clone(), 2).into_scalar(), 1.0);
        // With 1-pixel blocks it is plain MSE.
        let shifted = tensor([2.0, 2.0, 3.0, 6.0]);
        assert_eq!(
            block_mse(shifted.clone(), reference.clone(), 1).into_scalar(),
            mse(shifted, reference).into_scalar()
        );
    }
}
