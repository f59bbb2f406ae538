//! Deterministic pseudo-random models and numbers, for tests and benchmarks that must see
//! the same weights on every run (burn's own generator is shared by all threads).

use super::config::DnCnnConfig;
use super::directory::StoredModel;
use super::weights::{ModelWeights, Tensor32, WeightsError, expected_tensors};

/// splitmix64 mapped to [0, 1): deterministic, so every run times the same numbers.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn uniform(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Roughly standard normal (sum of four uniforms, rescaled).
    pub fn normal(&mut self) -> f32 {
        let sum: f32 = (0..4).map(|_| self.uniform()).sum();
        (sum - 2.0) * 3.0f32.sqrt()
    }
}

/// A model of `config` with deterministic pseudo-random weights: conv kernels uniform in
/// ±1/√fan-in, small biases, BatchNorm γ near 1, running variances in [0.5, 1.5).
pub fn pseudo_random_model(config: DnCnnConfig, seed: u64) -> Result<StoredModel, WeightsError> {
    let mut rng = SplitMix::new(seed);
    let mut weights = ModelWeights::default();
    for (name, shape) in expected_tensors(&config) {
        let len: usize = shape.iter().product();
        let values: Vec<f32> = if name.ends_with(".weight") {
            let bound = 1.0 / (shape.iter().skip(1).product::<usize>() as f32).sqrt();
            (0..len).map(|_| (2.0 * rng.uniform() - 1.0) * bound).collect()
        } else if name.ends_with(".gamma") {
            (0..len).map(|_| 0.9 + 0.2 * rng.uniform()).collect()
        } else if name.ends_with(".running_var") {
            (0..len).map(|_| 0.5 + rng.uniform()).collect()
        } else {
            // conv biases, BatchNorm β and running means
            (0..len).map(|_| (2.0 * rng.uniform() - 1.0) * 0.05).collect()
        };
        weights.insert(name, Tensor32::new(shape, values));
    }
    StoredModel::new(config, weights)
}
