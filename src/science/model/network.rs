//! The paper's 2.5D DnCNN as a burn module (docs/science.md §1), and its conversion to and
//! from petal's plain named weights.
//!
//! conv1 → ReLU; conv2..conv7 → BatchNorm → ReLU; conv8 predicts the noise, and the output
//! is the input minus that noise. The forward pass can carry Targeted Gradient Descent
//! gates ([`TgdGates`]): the identity forward, a masked gradient backward, one per hidden
//! layer.

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::config::{DnCnnConfig, KERNEL_SIZE};
pub use super::tgd_gates::TgdGates;
use super::weights::{ModelWeights, Tensor32, WeightsError, names};

/// The network. `norms[i]` belongs to `convs[i + 1]` (conv2..conv7).
#[derive(Module, Debug)]
pub struct DnCnn<B: Backend> {
    convs: Vec<Conv2d<B>>,
    norms: Vec<BatchNorm<B>>,
}

impl<B: Backend> DnCnn<B> {
    /// A freshly initialised network (Kaiming-uniform kernels, identity BatchNorm). The
    /// values are drawn now: burn initialises parameters lazily, and clones taken before
    /// the first use would each draw their own.
    pub fn init(config: &DnCnnConfig, device: &B::Device) -> Self {
        let mut network = Self::init_lazy(config, device);
        for conv in &mut network.convs {
            conv.weight = Param::from_tensor(conv.weight.val());
            conv.bias = conv.bias.as_ref().map(|b| Param::from_tensor(b.val()));
        }
        network
    }

    fn init_lazy(config: &DnCnnConfig, device: &B::Device) -> Self {
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        for layer in config.layers() {
            convs.push(
                Conv2dConfig::new([layer.in_channels, layer.out_channels], [KERNEL_SIZE, KERNEL_SIZE])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
            if layer.batch_norm {
                norms.push(
                    BatchNormConfig::new(layer.out_channels)
                        .with_epsilon(config.batch_norm_epsilon)
                        .with_momentum(config.batch_norm_momentum)
                        .init(device),
                );
            }
        }
        Self { convs, norms }
    }

    /// The network holding `weights` (checked against `config` first).
    pub fn from_weights(
        config: &DnCnnConfig,
        weights: &ModelWeights,
        device: &B::Device,
    ) -> Result<Self, WeightsError> {
        weights.check(config)?;
        let mut network = Self::init_lazy(config, device);
        let mut norms = network.norms.iter_mut();
        for (conv, layer) in network.convs.iter_mut().zip(config.layers()) {
            conv.weight = Param::from_tensor(tensor(weights.require(&names::conv_weight(layer.index))?, device));
            conv.bias = Some(Param::from_tensor(tensor(weights.require(&names::conv_bias(layer.index))?, device)));
            if layer.batch_norm {
                let Some(norm) = norms.next() else { break };
                let i = layer.index;
                norm.gamma = Param::from_tensor(tensor(weights.require(&names::bn_gamma(i))?, device));
                norm.beta = Param::from_tensor(tensor(weights.require(&names::bn_beta(i))?, device));
                norm.running_mean = RunningState::new(tensor(weights.require(&names::bn_running_mean(i))?, device));
                norm.running_var = RunningState::new(tensor(weights.require(&names::bn_running_var(i))?, device));
            }
        }
        Ok(network)
    }

    /// The network's tensors under petal's names.
    pub fn to_weights(&self) -> ModelWeights {
        let mut weights = ModelWeights::default();
        let mut norms = self.norms.iter();
        for (i, conv) in self.convs.iter().enumerate() {
            let index = i + 1;
            weights.insert(names::conv_weight(index), plain(conv.weight.val()));
            if let Some(bias) = &conv.bias {
                weights.insert(names::conv_bias(index), plain(bias.val()));
            }
            if index > 1
                && index < self.convs.len()
                && let Some(norm) = norms.next()
            {
                weights.insert(names::bn_gamma(index), plain(norm.gamma.val()));
                weights.insert(names::bn_beta(index), plain(norm.beta.val()));
                weights.insert(names::bn_running_mean(index), plain(norm.running_mean.value_sync()));
                weights.insert(names::bn_running_var(index), plain(norm.running_var.value_sync()));
            }
        }
        weights
    }

    /// Number of convolutions (8 for the paper's network).
    pub fn depth(&self) -> usize {
        self.convs.len()
    }

    /// The convolutions, conv1 first (for parameter ids when masking gradients).
    pub fn convolutions(&self) -> &[Conv2d<B>] {
        &self.convs
    }

    /// The BatchNorm layers of conv2..conv7.
    pub fn batch_norms(&self) -> &[BatchNorm<B>] {
        &self.norms
    }

    /// Replaces the running statistics of BatchNorm layer `k` (of conv`k + 2`). burn keeps
    /// them in a cell shared by every clone of the module and applies updates one step
    /// late; a fresh cell holding exactly these values sidesteps both.
    pub fn set_running_statistics(&mut self, k: usize, mean: Tensor<B, 1>, var: Tensor<B, 1>) {
        if let Some(norm) = self.norms.get_mut(k) {
            norm.running_mean = RunningState::new(mean);
            norm.running_var = RunningState::new(var);
        }
    }

    /// Multiplies the kernels that read input channel `c` of convolution `conv` (0-based:
    /// `W[:, c]`) by `factors[c]`. Parameter ids are kept, so an optimiser's state follows.
    pub fn scale_input_channels(mut self, conv: usize, factors: &[f32]) -> Self {
        if let Some(layer) = self.convs.get_mut(conv) {
            layer.weight = scale_along(layer.weight.clone(), 1, factors);
        }
        self
    }

    /// Multiplies what output channel `c` of convolution `conv` (0-based) emits by
    /// `factors[c]`: where BatchNorm follows, its γ and β (the kernels before it would be
    /// normalised away); otherwise the channel's filter and bias.
    pub fn scale_output_channels(mut self, conv: usize, factors: &[f32]) -> Self {
        let has_norm = conv > 0 && conv + 1 < self.convs.len();
        if has_norm {
            if let Some(norm) = self.norms.get_mut(conv - 1) {
                norm.gamma = scale_along(norm.gamma.clone(), 0, factors);
                norm.beta = scale_along(norm.beta.clone(), 0, factors);
            }
        } else if let Some(layer) = self.convs.get_mut(conv) {
            layer.weight = scale_along(layer.weight.clone(), 0, factors);
            if let Some(bias) = layer.bias.take() {
                layer.bias = Some(scale_along(bias, 0, factors));
            }
        }
        self
    }

    /// The current running statistics of every BatchNorm layer, pending updates applied.
    pub fn running_statistics(&self) -> Vec<(Tensor<B, 1>, Tensor<B, 1>)> {
        self.norms.iter().map(|n| (n.running_mean.value_sync(), n.running_var.value_sync())).collect()
    }

    /// Gives this copy its own running-statistics cells, so training it leaves other
    /// clones (e.g. the parent model) untouched.
    pub fn own_running_statistics(mut self) -> Self {
        for (k, (mean, var)) in self.running_statistics().into_iter().enumerate() {
            self.set_running_statistics(k, mean, var);
        }
        self
    }

    /// The forward pass as training runs it, every BatchNorm normalising with the batch's own
    /// statistics; returns the per-channel mean and (biased) variance of what entered each
    /// BatchNorm. Averaged over many batches they re-estimate the running statistics, which
    /// the exponential average of training leaves resting on the last few batches.
    pub fn batch_statistics(&self, input: Tensor<B, 4>) -> Vec<(Tensor<B, 1>, Tensor<B, 1>)> {
        let mut statistics = Vec::with_capacity(self.norms.len());
        self.predicted_noise(input, &TgdGates::none(), |norm, x| {
            let [batch, channels, height, width] = x.dims();
            let per_channel = x.clone().swap_dims(0, 1).reshape([channels, batch * height * width]);
            let mean = per_channel.clone().mean_dim(1);
            let var = per_channel.sub(mean.clone()).powi_scalar(2).mean_dim(1);
            let as_image = |t: Tensor<B, 2>| t.reshape([1, channels, 1, 1]);
            let scale = as_image(norm.gamma.val().reshape([channels, 1]))
                .div(as_image(var.clone().add_scalar(norm.epsilon)).sqrt());
            let normalised =
                x.sub(as_image(mean.clone())).mul(scale).add(as_image(norm.beta.val().reshape([channels, 1])));
            statistics.push((mean.reshape([channels]), var.reshape([channels])));
            normalised
        });
        statistics
    }

    /// Denoises `input` [batch, slices, height, width]: input − predicted noise.
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_gated(input, &TgdGates::none())
    }

    /// The forward pass with TGD gates after each hidden layer (see [`TgdGates`]).
    pub fn forward_gated(&self, input: Tensor<B, 4>, gates: &TgdGates<B>) -> Tensor<B, 4> {
        let noise = self.predicted_noise(input.clone(), gates, |norm, x| norm.forward(x));
        input.sub(noise)
    }

    /// The forward pass with TGD gates, every BatchNorm normalising with its running
    /// statistics as inference does, also while training: the steps then optimise exactly
    /// the function that will denoise, and no batch's statistics leak into it.
    pub fn forward_gated_frozen_statistics(&self, input: Tensor<B, 4>, gates: &TgdGates<B>) -> Tensor<B, 4> {
        let noise = self.predicted_noise(input.clone(), gates, |norm, x| {
            let channels = x.dims()[1];
            let as_image = |t: Tensor<B, 1>| t.reshape([1, channels, 1, 1]);
            let mean = as_image(norm.running_mean.value());
            let scale =
                as_image(norm.gamma.val()).div(as_image(norm.running_var.value().add_scalar(norm.epsilon)).sqrt());
            x.sub(mean).mul(scale).add(as_image(norm.beta.val()))
        });
        input.sub(noise)
    }

    /// conv8's output (the predicted noise), each BatchNorm applied by `normalise`.
    fn predicted_noise(
        &self,
        input: Tensor<B, 4>,
        gates: &TgdGates<B>,
        mut normalise: impl FnMut(&BatchNorm<B>, Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        let last = self.convs.len() - 1;
        let mut x = input;
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv.forward(x);
            if i == last {
                break;
            }
            if i > 0
                && let Some(norm) = self.norms.get(i - 1)
            {
                x = normalise(norm, x);
            }
            x = relu(gates.apply(i, x));
        }
        x
    }
}

/// `param` with every slice along `axis` multiplied by its factor (missing factors are 1),
/// under the same parameter id and with the same need for gradients.
fn scale_along<B: Backend, const D: usize>(
    param: Param<Tensor<B, D>>,
    axis: usize,
    factors: &[f32],
) -> Param<Tensor<B, D>> {
    param.map(|t| {
        let dims = t.dims();
        let values: Vec<f32> = (0..dims[axis]).map(|c| factors.get(c).copied().unwrap_or(1.0)).collect();
        let mut shape = [1; D];
        shape[axis] = dims[axis];
        let scale = Tensor::<B, D>::from_data(TensorData::new(values, shape), &t.device());
        let require_grad = t.is_require_grad();
        t.mul(scale).detach().set_require_grad(require_grad)
    })
}

fn tensor<B: Backend, const D: usize>(t: &Tensor32, device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(t.values.clone(), t.shape.clone()), device)
}

fn plain<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor32 {
    let shape = t.dims().to_vec();
    let data = t.into_data();
    // Float tensors of a float backend always convert; an empty vector would fail `check`.
    let values = data.convert::<f32>().to_vec::<f32>().unwrap_or_default();
    Tensor32::new(shape, values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::model::backend::CpuBackend;

    #[test]
    fn weights_round_trip_exactly_and_output_keeps_shape() {
        let device = Default::default();
        let config = DnCnnConfig::scaled(0.25);
        let network = DnCnn::<CpuBackend>::init(&config, &device);
        let weights = network.to_weights();
        weights.check(&config).expect("all tensors present");
        let again = DnCnn::<CpuBackend>::from_weights(&config, &weights, &device).expect("load");
        assert_eq!(again.to_weights(), weights);

        let input = Tensor::<CpuBackend, 4>::ones([2, 3, 12, 10], &device);
        let output = network.forward(input);
        assert_eq!(output.dims(), [2, 3, 12, 10]);
    }

    #[test]
    fn batch_statistics_are_those_a_training_forward_pass_averages_in() {
        use crate::science::model::backend::CpuTrainingBackend;
        // Momentum 1: one training pass leaves exactly that batch's statistics behind.
        let config = DnCnnConfig { batch_norm_momentum: 1.0, ..DnCnnConfig::scaled(0.125) };
        let device = Default::default();
        let network = DnCnn::<CpuTrainingBackend>::init(&config, &device);
        let values: Vec<f32> = (0..2 * 3 * 9 * 7).map(|i| ((i * 31) % 17) as f32 / 8.0).collect();
        let input = Tensor::<CpuTrainingBackend, 4>::from_data(TensorData::new(values, [2, 3, 9, 7]), &device);
        let ours = network.batch_statistics(input.clone());
        let _ = network.forward(input);
        let burns = network.running_statistics();
        assert_eq!(ours.len(), burns.len());
        for (layer, ((mean, var), (running_mean, running_var))) in ours.into_iter().zip(burns).enumerate() {
            let gap =
                |a: Tensor<CpuTrainingBackend, 1>, b: Tensor<CpuTrainingBackend, 1>| a.sub(b).abs().max().into_scalar();
            assert!(gap(mean, running_mean) < 1e-5, "bn{}: mean", layer + 2);
            assert!(gap(var, running_var) < 1e-5, "bn{}: variance", layer + 2);
        }
    }
}
