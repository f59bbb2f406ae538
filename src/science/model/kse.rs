//! Kernel Sparsity and Entropy (Li et al., CVPR 2019), computed per *input channel* of a
//! convolution exactly as docs/science.md §3 defines it.
//!
//! For input channel c of a layer with weights W[N_out, C_in, 3, 3], the N_out kernels
//! W[n, c] are compared: their summed L1 norm is the sparsity s_c; the entropy e_c of their
//! k-nearest-neighbour density says how diverse they are. Both are min-max normalised over
//! the layer's channels, combined as sqrt(s / (1 + α e)) and normalised again to [0, 1].
//! Low scores mark channels whose kernels carry little: TGD retrains the kernels that
//! produce them.
//!
//! The authors' public code reshapes W instead of slicing it per input channel, which mixes
//! channels up whenever C_in ≠ N_out; this implementation slices, and its tests compare it
//! with an independent numpy reference (`scripts/reference/kse_reference.py`).

/// Neighbours counted in the density estimate (fewer when the layer has fewer kernels).
pub const NEIGHBOURS: usize = 5;
/// Weight of the entropy term.
pub const ALPHA: f64 = 1.0;
/// Guards divisions by a zero sum.
const EPS: f64 = 1e-12;

/// Weights of one convolution, `[out_channels, in_channels, kernel_h, kernel_w]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvWeights {
    pub out_channels: usize,
    pub in_channels: usize,
    /// Values per kernel (9 for 3×3).
    pub kernel_size: usize,
    pub values: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("weights of shape [{out_channels}, {in_channels}, {kernel_size}] need {expected} values, got {actual}")]
pub struct ShapeError {
    out_channels: usize,
    in_channels: usize,
    kernel_size: usize,
    expected: usize,
    actual: usize,
}

impl ConvWeights {
    pub fn new(
        out_channels: usize,
        in_channels: usize,
        kernel_size: usize,
        values: Vec<f32>,
    ) -> Result<Self, ShapeError> {
        let expected = out_channels * in_channels * kernel_size;
        if values.len() != expected || expected == 0 {
            return Err(ShapeError { out_channels, in_channels, kernel_size, expected, actual: values.len() });
        }
        Ok(ConvWeights { out_channels, in_channels, kernel_size, values })
    }

    /// Kernel W[n, c].
    pub fn kernel(&self, n: usize, c: usize) -> &[f32] {
        let start = (n * self.in_channels + c) * self.kernel_size;
        &self.values[start..start + self.kernel_size]
    }
}

/// The scores of one layer, per input channel.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerKse {
    /// Sparsity s_c before normalisation.
    pub sparsity: Vec<f64>,
    /// Entropy e_c (bits) before normalisation.
    pub entropy: Vec<f64>,
    /// KSE_c in [0, 1].
    pub score: Vec<f64>,
}

/// Min-max normalisation to [0, 1]; a constant vector (zero range) becomes all zeros.
fn min_max(values: &[f64]) -> Vec<f64> {
    let (low, high) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
    let range = high - low;
    // NaN (from infinite or NaN inputs) and zero ranges both fall back to zeros.
    if range.is_nan() || range <= 0.0 {
        return vec![0.0; values.len()];
    }
    values.iter().map(|v| (v - low) / range).collect()
}

/// Entropy of the k-NN density of the kernels `W[·, c]`.
fn channel_entropy(weights: &ConvWeights, c: usize) -> f64 {
    let n = weights.out_channels;
    let k = NEIGHBOURS.min(n.saturating_sub(1));
    if k == 0 {
        return 0.0;
    }
    let distance = |a: usize, b: usize| -> f64 {
        weights
            .kernel(a, c)
            .iter()
            .zip(weights.kernel(b, c))
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let density: Vec<f64> = (0..n)
        .map(|i| {
            let mut to_others: Vec<f64> = (0..n).filter(|j| *j != i).map(|j| distance(i, j)).collect();
            to_others.sort_by(f64::total_cmp);
            to_others[..k].iter().sum()
        })
        .collect();
    let total: f64 = density.iter().sum();
    density.iter().map(|d| d / total.max(EPS)).filter(|p| *p > 0.0).map(|p| -p * p.log2()).sum()
}

/// KSE scores of every input channel of one layer.
pub fn layer_kse(weights: &ConvWeights) -> LayerKse {
    let sparsity: Vec<f64> = (0..weights.in_channels)
        .map(|c| {
            (0..weights.out_channels)
                .map(|n| weights.kernel(n, c).iter().map(|w| f64::from(w.abs())).sum::<f64>())
                .sum()
        })
        .collect();
    let entropy: Vec<f64> = (0..weights.in_channels).map(|c| channel_entropy(weights, c)).collect();
    let (s, e) = (min_max(&sparsity), min_max(&entropy));
    let raw: Vec<f64> = s.iter().zip(&e).map(|(s, e)| (s / (1.0 + ALPHA * e)).sqrt()).collect();
    LayerKse { sparsity, entropy, score: min_max(&raw) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked() {
        assert!(ConvWeights::new(2, 3, 9, vec![0.0; 54]).is_ok());
        assert!(ConvWeights::new(2, 3, 9, vec![0.0; 53]).is_err());
    }

    #[test]
    fn constant_layers_give_zeros_not_nan() {
        let zeros = layer_kse(&ConvWeights::new(4, 3, 9, vec![0.0; 108]).expect("shape"));
        assert!(zeros.score.iter().all(|s| *s == 0.0));
        let single = layer_kse(&ConvWeights::new(1, 2, 9, (0..18).map(|v| v as f32).collect()).expect("shape"));
        assert!(single.score.iter().all(|s| s.is_finite()));
        assert_eq!(single.entropy, vec![0.0, 0.0], "one kernel has no neighbours");
    }
}
