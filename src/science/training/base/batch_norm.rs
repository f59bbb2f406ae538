//! Precise BatchNorm statistics: after training, each BatchNorm's running mean and variance
//! are replaced by the average of many batches' statistics, drawn as training drew them.
//!
//! Training keeps them as an exponential average with momentum 0.1, so at the end they rest
//! on the last dozen batches of 16 patches. With half the patches drawn around lesions that
//! noise shifted whole regions of a base model's output by 1–2 %, and the averaged
//! statistics removed most of the shift (docs/models.md, "Small lesions").

use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::patches::PatchSampler;
use crate::science::model::backend::CpuBackend;
use crate::science::model::directory::StoredModel;
use crate::science::model::network::DnCnn;
use crate::science::model::weights::WeightsError;

/// `model` with every BatchNorm's running statistics replaced by the mean over `batches`
/// batches from `sampler` of the batch statistics (each batch normalised by its own, as in
/// training). With no batches, or no BatchNorm layers, the model comes back unchanged.
pub fn precise_batch_norm(
    model: &StoredModel,
    sampler: &PatchSampler<'_>,
    batches: usize,
    seed: u64,
) -> Result<StoredModel, WeightsError> {
    if batches == 0 {
        return Ok(model.clone());
    }
    let device = Default::default();
    let mut network = DnCnn::<CpuBackend>::from_weights(&model.config, &model.weights, &device)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sums: Vec<(Tensor<CpuBackend, 1>, Tensor<CpuBackend, 1>)> = Vec::new();
    for _ in 0..batches {
        let batch = sampler.draw(&mut rng);
        let input = Tensor::<CpuBackend, 4>::from_data(TensorData::new(batch.input, batch.shape), &device);
        let statistics = network.batch_statistics(input);
        if sums.is_empty() {
            sums = statistics;
        } else {
            for ((mean_sum, var_sum), (mean, var)) in sums.iter_mut().zip(statistics) {
                *mean_sum = mean_sum.clone().add(mean);
                *var_sum = var_sum.clone().add(var);
            }
        }
    }
    for (layer, (mean_sum, var_sum)) in sums.into_iter().enumerate() {
        let n = batches as f32;
        network.set_running_statistics(layer, mean_sum.div_scalar(n), var_sum.div_scalar(n));
    }
    StoredModel::new(model.config.clone(), network.to_weights())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::image::{Grid, Image3};
    use crate::science::model::config::DnCnnConfig;
    use crate::science::training::base::TrainingPair;
    use crate::science::training::base::patches::PatchSampling;

    #[test]
    fn running_statistics_become_the_average_of_the_batches() {
        let config = DnCnnConfig::scaled(0.125);
        let device = Default::default();
        let network = DnCnn::<CpuBackend>::init(&config, &device);
        let model = StoredModel::new(config.clone(), network.to_weights()).expect("model");
        let grid = Grid::new(16, 4);
        let image = Image3 { grid, data: (0..grid.voxels()).map(|i| ((i * 37) % 101) as f32 / 50.0).collect() };
        let pairs = vec![TrainingPair {
            name: "t".into(),
            inputs: vec![(1.0, image.clone())],
            target: image,
            regions: None,
            train_slices: None,
        }];
        let sampler = PatchSampler::new(&pairs, PatchSampling { batch: 2, patch: 8, window: 3, lesion_share: 0.0 });

        assert_eq!(precise_batch_norm(&model, &sampler, 0, 1).expect("no batches").weights, model.weights);
        let precise = precise_batch_norm(&model, &sampler, 3, 1).expect("precise");
        // The same three batches, by hand: the mean of their statistics.
        let mut rng = StdRng::seed_from_u64(1);
        let statistics: Vec<_> = (0..3)
            .map(|_| {
                let batch = sampler.draw(&mut rng);
                network.batch_statistics(Tensor::from_data(TensorData::new(batch.input, batch.shape), &device))
            })
            .collect();
        let recomputed = DnCnn::<CpuBackend>::from_weights(&config, &precise.weights, &device).expect("load");
        for (layer, (mean, var)) in recomputed.running_statistics().into_iter().enumerate() {
            let expected_mean = statistics.iter().map(|s| s[layer].0.clone()).reduce(|a, b| a.add(b)).expect("3");
            let expected_var = statistics.iter().map(|s| s[layer].1.clone()).reduce(|a, b| a.add(b)).expect("3");
            let gap =
                |a: Tensor<CpuBackend, 1>, b: Tensor<CpuBackend, 1>| a.sub(b.div_scalar(3.0)).abs().max().into_scalar();
            assert!(gap(mean, expected_mean) < 1e-5, "layer {layer}: running mean");
            assert!(gap(var, expected_var) < 1e-5, "layer {layer}: running variance");
        }
        // Kernels and biases are not touched.
        let kernel = crate::science::model::weights::names::conv_weight(3);
        assert_eq!(precise.weights.require(&kernel).expect("w"), model.weights.require(&kernel).expect("w"));
    }
}
