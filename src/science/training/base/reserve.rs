//! Kernels held in reserve for online learning (`petal train-base --reserve-share`).
//!
//! A TGD round retrains only the channels that KSE scores as meaningless, so a base model
//! whose channels all matter leaves a round no room: dropping the channels KSE flags costs
//! it several dB (docs/learning.md). A reserve makes that room on purpose. When training
//! starts from a model, the lowest-KSE share of each layer's input channels is set aside,
//! and over the first half of the steps two bounds close on every reserved channel:
//!
//! - what the channel **emits** (BatchNorm's γ and β where one follows its convolution,
//!   otherwise its filter and bias) is driven down to `activation_floor` of its starting
//!   size, so the rest of the network learns to do without it and dropping it costs next
//!   to nothing;
//! - the kernels that **read** it (`W[:, c]` of the next convolution) are held at
//!   `outgoing_scale` of their starting norm: small enough that KSE scores the channel
//!   lowest of its layer, large enough that a round which regrows the channel's output
//!   reaches the image through them (conv8, which a round never retrains, is the last link).
//!
//! The bounds are projections applied after each optimiser step; they keep parameter ids,
//! so Adam's state carries on.

use anyhow::Context;

use crate::science::model::kse::layer_kse;
use crate::science::model::weights::{ModelWeights, names};

/// How much of each layer is reserved, and how far it is shrunk.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ReserveSettings {
    /// Share of each layer's input channels (conv2 to conv8) set aside, lowest KSE first.
    pub share: f64,
    /// What a reserved channel emits, at the end, as a fraction of its starting size.
    pub activation_floor: f64,
    /// The norm of the kernels reading a reserved channel, at the end, as a fraction of
    /// their starting norm.
    pub outgoing_scale: f64,
}

impl ReserveSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.share > 0.0 && self.share < 1.0, "the reserve share must lie in (0, 1)");
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.activation_floor) && (0.0..=1.0).contains(&self.outgoing_scale),
            "the reserve's activation floor and outgoing scale must lie in [0, 1]"
        );
        Ok(())
    }
}

/// The reserved channels of one consumer convolution, and their starting sizes.
#[derive(Debug, Clone, PartialEq)]
struct ReservedLayer {
    /// 1-based index of the convolution that reads the channels (2..=depth).
    consumer: usize,
    channels: Vec<usize>,
    /// Starting L2 norm of `W[:, c]` in the consumer, per reserved channel.
    outgoing: Vec<f64>,
    /// Starting size of what each reserved channel emits (see [`emitted_size`]).
    emitted: Vec<f64>,
}

/// Factors for one consumer convolution, per input channel (1 where nothing changes).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelScaling {
    /// 1-based index of the consumer convolution; the producer is the one before it.
    pub consumer: usize,
    /// Factor for the kernels reading each channel.
    pub outgoing: Vec<f32>,
    /// Factor for what each channel emits.
    pub emitted: Vec<f32>,
}

/// The reserve chosen at the start of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelReserve {
    settings: ReserveSettings,
    layers: Vec<ReservedLayer>,
}

impl KernelReserve {
    /// Reserves the lowest-KSE `settings.share` of every layer's input channels (at least
    /// one, never all; none in a layer of one channel) in `weights`.
    pub fn choose(weights: &ModelWeights, settings: ReserveSettings) -> anyhow::Result<Self> {
        settings.validate()?;
        let convs = weights.convolutions().context("reading the convolutions")?;
        let mut layers = Vec::new();
        for (k, conv) in convs.iter().enumerate().skip(1) {
            let consumer = k + 1;
            let inputs = conv.weights.in_channels;
            if inputs < 2 {
                // A layer of one channel has nothing to spare.
                continue;
            }
            let count = ((inputs as f64 * settings.share).round() as usize).clamp(1, inputs - 1);
            let scores = layer_kse(&conv.weights).score;
            let mut order: Vec<usize> = (0..inputs).collect();
            order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]).then(a.cmp(b)));
            let mut channels = order[..count].to_vec();
            channels.sort_unstable();
            let outgoing = channels.iter().map(|c| outgoing_norm(weights, consumer, *c)).collect::<Result<_, _>>()?;
            let emitted = channels.iter().map(|c| emitted_size(weights, consumer - 1, *c)).collect::<Result<_, _>>()?;
            layers.push(ReservedLayer { consumer, channels, outgoing, emitted });
        }
        Ok(Self { settings, layers })
    }

    /// Reserved channels per consumer convolution (1-based index, channels).
    pub fn channels(&self) -> Vec<(usize, &[usize])> {
        self.layers.iter().map(|l| (l.consumer, l.channels.as_slice())).collect()
    }

    /// The factors that bring `weights` within the bounds at `progress` (0 at the start,
    /// 1 from the end of the ramp on): each bound falls linearly from the starting size to
    /// its final fraction; a channel already within its bound keeps factor 1, and a layer
    /// whose channels all are is not listed.
    pub fn scaling(&self, weights: &ModelWeights, progress: f64) -> anyhow::Result<Vec<ChannelScaling>> {
        let progress = progress.clamp(0.0, 1.0);
        let bound = |start: f64, fraction: f64| start * (1.0 - progress * (1.0 - fraction));
        let factor = |current: f64, limit: f64| if current > limit { (limit / current) as f32 } else { 1.0 };
        let mut scalings = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let inputs = weights.require(&names::conv_weight(layer.consumer))?.shape[1];
            let mut scaling =
                ChannelScaling { consumer: layer.consumer, outgoing: vec![1.0; inputs], emitted: vec![1.0; inputs] };
            for (i, &c) in layer.channels.iter().enumerate() {
                let outgoing = outgoing_norm(weights, layer.consumer, c)?;
                scaling.outgoing[c] = factor(outgoing, bound(layer.outgoing[i], self.settings.outgoing_scale));
                let emitted = emitted_size(weights, layer.consumer - 1, c)?;
                scaling.emitted[c] = factor(emitted, bound(layer.emitted[i], self.settings.activation_floor));
            }
            // Layers already within their bounds are left out: nothing to multiply.
            if scaling.outgoing.iter().chain(&scaling.emitted).any(|f| *f < 1.0) {
                scalings.push(scaling);
            }
        }
        Ok(scalings)
    }
}

/// L2 norm of the kernels of convolution `consumer` (1-based) that read input channel `c`.
fn outgoing_norm(weights: &ModelWeights, consumer: usize, c: usize) -> anyhow::Result<f64> {
    let w = weights.require(&names::conv_weight(consumer))?;
    let [outputs, inputs, kh, kw] = <[usize; 4]>::try_from(w.shape.clone())
        .map_err(|shape| anyhow::anyhow!("conv{consumer} has shape {shape:?}, not 4 axes"))?;
    let per_kernel = kh * kw;
    let mut sum = 0.0;
    for n in 0..outputs {
        let start = (n * inputs + c) * per_kernel;
        sum += w.values[start..start + per_kernel].iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
    }
    Ok(sum.sqrt())
}

/// Size of what output channel `c` of convolution `producer` (1-based) emits: the L2 norm
/// of (γ, β) of the BatchNorm that follows it, or of its filter and bias without one.
fn emitted_size(weights: &ModelWeights, producer: usize, c: usize) -> anyhow::Result<f64> {
    if let (Some(gamma), Some(beta)) = (weights.get(&names::bn_gamma(producer)), weights.get(&names::bn_beta(producer)))
    {
        return Ok((f64::from(gamma.values[c]).powi(2) + f64::from(beta.values[c]).powi(2)).sqrt());
    }
    let w = weights.require(&names::conv_weight(producer))?;
    let per_channel: usize = w.shape[1..].iter().product();
    let filter: f64 = w.values[c * per_channel..(c + 1) * per_channel].iter().map(|v| f64::from(*v).powi(2)).sum();
    let bias = weights.get(&names::conv_bias(producer)).map_or(0.0, |b| f64::from(b.values[c]).powi(2));
    Ok((filter + bias).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::model::backend::CpuBackend;
    use crate::science::model::config::DnCnnConfig;
    use crate::science::model::network::DnCnn;

    fn settings() -> ReserveSettings {
        ReserveSettings { share: 0.25, activation_floor: 0.01, outgoing_scale: 0.3 }
    }

    fn network() -> (DnCnnConfig, DnCnn<CpuBackend>) {
        let config = DnCnnConfig::scaled(0.25);
        let network = DnCnn::<CpuBackend>::init(&config, &Default::default());
        (config, network)
    }

    #[test]
    fn the_reserve_takes_the_lowest_kse_share_of_every_layer() {
        let (_, network) = network();
        let weights = network.to_weights();
        let reserve = KernelReserve::choose(&weights, settings()).expect("valid weights");
        let convs = weights.convolutions().expect("valid weights");
        assert_eq!(reserve.channels().len(), convs.len() - 1);
        for (consumer, channels) in reserve.channels() {
            let scores = layer_kse(&convs[consumer - 1].weights).score;
            assert_eq!(channels.len(), (scores.len() as f64 * 0.25).round() as usize);
            let highest_reserved = channels.iter().map(|c| scores[*c]).fold(f64::MIN, f64::max);
            let lowest_kept =
                (0..scores.len()).filter(|c| !channels.contains(c)).map(|c| scores[c]).fold(f64::MAX, f64::min);
            assert!(highest_reserved <= lowest_kept, "conv{consumer}: {highest_reserved} > {lowest_kept}");
        }
    }

    #[test]
    fn applied_factors_bring_reserved_channels_to_their_bounds_and_leave_the_rest() {
        let (_, network) = network();
        let start = network.to_weights();
        let reserve = KernelReserve::choose(&start, settings()).expect("valid weights");
        assert!(
            reserve.scaling(&start, 0.0).expect("valid weights").iter().all(|s| s
                .outgoing
                .iter()
                .chain(&s.emitted)
                .all(|f| *f == 1.0))
        );
        let mut scaled = network;
        for s in reserve.scaling(&start, 1.0).expect("valid weights") {
            scaled = scaled
                .scale_input_channels(s.consumer - 1, &s.outgoing)
                .scale_output_channels(s.consumer - 2, &s.emitted);
        }
        let after = scaled.to_weights();
        for layer in &reserve.layers {
            for (i, &c) in layer.channels.iter().enumerate() {
                let outgoing = outgoing_norm(&after, layer.consumer, c).expect("valid weights");
                assert!((outgoing - 0.3 * layer.outgoing[i]).abs() <= 1e-5 * layer.outgoing[i].max(1.0));
                let emitted = emitted_size(&after, layer.consumer - 1, c).expect("valid weights");
                assert!((emitted - 0.01 * layer.emitted[i]).abs() <= 1e-5 * layer.emitted[i].max(1.0));
            }
        }
        // A kept channel is untouched, bit for bit.
        let layer = &reserve.layers[2];
        let kept = (0..64).find(|c| !layer.channels.contains(c)).expect("valid weights");
        assert_eq!(
            outgoing_norm(&after, layer.consumer, kept).expect("valid weights"),
            outgoing_norm(&start, layer.consumer, kept).expect("valid weights")
        );
        // Within bounds, nothing moves again.
        assert!(
            reserve.scaling(&after, 1.0).expect("valid weights").iter().all(|s| s
                .outgoing
                .iter()
                .chain(&s.emitted)
                .all(|f| (*f - 1.0).abs() < 1e-5))
        );
    }
}
