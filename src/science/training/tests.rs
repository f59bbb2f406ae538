//! TGD semantics and bit-exactness, checked on a small network.

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::trainer::{OptimizerSettings, Trainer};
use super::update_plan::{UpdatePlan, UpdateRule};
use crate::science::model::backend::CpuBackend;
use crate::science::model::config::DnCnnConfig;
use crate::science::model::network::DnCnn;
use crate::science::model::weights::{ModelWeights, Tensor32, expected_tensors, names};

type Ad = Autodiff<CpuBackend>;

/// A small network with weights from a local seeded generator (burn's generator is shared
/// by every test thread, so draws from it are not reproducible under parallel tests).
fn small_network() -> (DnCnnConfig, DnCnn<Ad>) {
    let config = DnCnnConfig::scaled(0.125);
    let mut rng = StdRng::seed_from_u64(7);
    let mut weights = ModelWeights::default();
    for (name, shape) in expected_tensors(&config) {
        let len: usize = shape.iter().product();
        let values: Vec<f32> = if name.ends_with(".weight") {
            let bound = (3.0 / (shape[1] * 9) as f32).sqrt();
            (0..len).map(|_| rng.random_range(-bound..bound)).collect()
        } else if name.ends_with("running_var") || name.ends_with("gamma") {
            (0..len).map(|_| rng.random_range(0.8..1.2)).collect()
        } else {
            (0..len).map(|_| rng.random_range(-0.05..0.05)).collect()
        };
        weights.insert(name, Tensor32::new(shape, values));
    }
    let network = DnCnn::<Ad>::from_weights(&config, &weights, &Default::default()).expect("weights fit");
    (config, network)
}

fn batch<B: Backend>(seed: u64) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let shape = [2usize, 3, 10, 10];
    let len = shape.iter().product();
    let clean: Vec<f32> = (0..len).map(|_| rng.random_range(0.5..1.5)).collect();
    let noisy = |rng: &mut StdRng| -> Vec<f32> { clean.iter().map(|c| c + rng.random_range(-0.3..0.3)).collect() };
    let device = Default::default();
    let input = Tensor::from_data(TensorData::new(noisy(&mut rng), shape), &device);
    let target = Tensor::from_data(TensorData::new(noisy(&mut rng), shape), &device);
    (input, target)
}

/// A plan retraining alternate channels of conv1..conv7, as a KSE mask might.
fn alternating_plan(network: &DnCnn<Ad>, rule: UpdateRule) -> UpdatePlan {
    let depth = network.depth();
    let retrain = network
        .convolutions()
        .iter()
        .enumerate()
        .map(|(i, c)| (0..c.weight.dims()[0]).map(|n| i + 1 < depth && n % 2 == 0).collect())
        .collect();
    UpdatePlan { retrain, rule }
}

fn kse_plan(network: &DnCnn<Ad>, phi: f64, rule: UpdateRule) -> UpdatePlan {
    UpdatePlan::from_mask(&super::tgd_passes::kse_mask(network, phi).expect("KSE"), rule)
}

/// Gradient of the loss w.r.t. `conv{layer}.weight`, as plain values.
fn weight_gradient(trainer: &Trainer<Ad>, layer: usize, input: Tensor<Ad, 4>, target: Tensor<Ad, 4>) -> Vec<f32> {
    let (_, grads) = trainer.gradients(input, target);
    let conv = &trainer.network().convolutions()[layer - 1];
    grads
        .get::<CpuBackend, 4>(conv.weight.id)
        .expect("gradient of a retrained layer")
        .into_data()
        .to_vec::<f32>()
        .expect("f32")
}

/// The loss when conv{layer}'s weight `index` is shifted by `delta`, with every kept channel
/// of every gated point held at its unperturbed value: the definition of "dL/dY of kept
/// channels is zero", evaluated without autodiff.
fn loss_with_kept_channels_frozen(
    network: &DnCnn<CpuBackend>,
    plan: &UpdatePlan,
    layer: usize,
    index: usize,
    delta: f32,
    input: Tensor<CpuBackend, 4>,
    target: Tensor<CpuBackend, 4>,
) -> f64 {
    use burn::tensor::activation::relu;
    let device = Default::default();
    let frozen = recorded_activations(network, input.clone());
    let mut weights = network.to_weights();
    let name = names::conv_weight(layer);
    let mut tensor = weights.require(&name).expect("weight").clone();
    tensor.values[index] += delta;
    weights.insert(name, tensor);
    let config = DnCnnConfig::scaled(0.125);
    let shifted = DnCnn::<CpuBackend>::from_weights(&config, &weights, &device).expect("weights");
    let depth = shifted.depth();
    let mut x = input.clone();
    let mut points = frozen.into_iter();
    for (i, conv) in shifted.convolutions().iter().enumerate() {
        x = conv.forward(x);
        if i + 1 == depth {
            break;
        }
        let keep = |y: Tensor<CpuBackend, 4>, recorded: Tensor<CpuBackend, 4>| {
            let m: Vec<f32> = plan.retrain[i].iter().map(|r| if *r { 1.0 } else { 0.0 }).collect();
            let m = Tensor::<CpuBackend, 4>::from_data(
                burn::tensor::TensorData::new(m, [1, plan.retrain[i].len(), 1, 1]),
                &device,
            );
            y.mul(m.clone()).add(recorded.mul(m.neg().add_scalar(1.0)))
        };
        x = keep(x, points.next().expect("conv point"));
        if i > 0 {
            x = keep(batch_norm_train(&shifted, i - 1, x), points.next().expect("bn point"));
        }
        x = relu(x);
    }
    mse_f64(input.sub(x), target)
}

/// Mean squared error summed in f64, so finite differences see small changes.
fn mse_f64(output: Tensor<CpuBackend, 4>, target: Tensor<CpuBackend, 4>) -> f64 {
    let output = output.into_data().to_vec::<f32>().expect("f32");
    let target = target.into_data().to_vec::<f32>().expect("f32");
    output.iter().zip(&target).map(|(o, t)| (*o as f64 - *t as f64).powi(2)).sum::<f64>() / output.len() as f64
}

/// Activations at every gate point of an unperturbed training-mode forward pass.
fn recorded_activations(network: &DnCnn<CpuBackend>, input: Tensor<CpuBackend, 4>) -> Vec<Tensor<CpuBackend, 4>> {
    use burn::tensor::activation::relu;
    let depth = network.depth();
    let mut points = Vec::new();
    let mut x = input;
    for (i, conv) in network.convolutions().iter().enumerate() {
        x = conv.forward(x);
        if i + 1 == depth {
            break;
        }
        points.push(x.clone());
        if i > 0 {
            x = batch_norm_train(network, i - 1, x);
            points.push(x.clone());
        }
        x = relu(x);
    }
    points
}

/// BatchNorm with batch statistics, as in training (the inner backend has no autodiff, so
/// burn's module would use running statistics).
fn batch_norm_train(network: &DnCnn<CpuBackend>, k: usize, x: Tensor<CpuBackend, 4>) -> Tensor<CpuBackend, 4> {
    let norm = &network.batch_norms()[k];
    let [b, c, h, w] = x.dims();
    let flat = x.clone().swap_dims(0, 1).reshape([c, b * h * w]);
    let mean = flat.clone().mean_dim(1).reshape([1, c, 1, 1]);
    let var = x
        .clone()
        .sub(mean.clone())
        .powi_scalar(2)
        .swap_dims(0, 1)
        .reshape([c, b * h * w])
        .mean_dim(1)
        .reshape([1, c, 1, 1]);
    let eps = DnCnnConfig::scaled(0.125).batch_norm_epsilon;
    x.sub(mean)
        .div(var.add_scalar(eps).sqrt())
        .mul(norm.gamma.val().reshape([1, c, 1, 1]))
        .add(norm.beta.val().reshape([1, c, 1, 1]))
}

/// dL/dW of conv{layer} when every kept channel at every gate point is a constant taken
/// from a separate, unperturbed forward pass: the definition of "dL/dY of kept channels is
/// zero", built without the detach trick.
fn gradient_with_kept_channels_constant(
    network: &DnCnn<Ad>,
    plan: &UpdatePlan,
    layer: usize,
    input: Tensor<Ad, 4>,
    target: Tensor<Ad, 4>,
) -> Vec<f32> {
    use burn::tensor::activation::relu;
    let device = Default::default();
    let mut constants = recorded_activations(&network.valid(), input.clone().inner()).into_iter();
    let depth = network.depth();
    let mut x = input.clone();
    for (i, conv) in network.convolutions().iter().enumerate() {
        x = conv.forward(x);
        if i + 1 == depth {
            break;
        }
        let m: Vec<f32> = plan.retrain[i].iter().map(|r| if *r { 1.0 } else { 0.0 }).collect();
        let m = Tensor::<Ad, 4>::from_data(TensorData::new(m, [1, plan.retrain[i].len(), 1, 1]), &device);
        let mut hold = |y: Tensor<Ad, 4>| {
            let constant = Tensor::<Ad, 4>::from_inner(constants.next().expect("a recorded gate point"));
            y.mul(m.clone()).add(constant.mul(m.clone().neg().add_scalar(1.0)))
        };
        x = hold(x);
        if i > 0 {
            x = hold(network.batch_norms()[i - 1].forward(x));
        }
        x = relu(x);
    }
    let loss = input.sub(x).sub(target).powi_scalar(2).mean();
    let grads = GradientsParams::from_grads(loss.backward(), network);
    grads
        .get::<CpuBackend, 4>(network.convolutions()[layer - 1].weight.id)
        .expect("a gradient")
        .into_data()
        .to_vec::<f32>()
        .expect("f32")
}

#[test]
fn tgd_layer_gradient_equals_kept_channels_held_constant_and_differs_from_parameter_mask() {
    let (config, network) = small_network();
    let plan = alternating_plan(&network, UpdateRule::TgdLayer);
    let (input, target) = batch::<Ad>(11);
    let tgd = Trainer::new(network.clone(), plan.clone(), OptimizerSettings::default());
    let masked = Trainer::new(
        network.clone(),
        UpdatePlan { rule: UpdateRule::ParameterMask, ..plan.clone() },
        OptimizerSettings::default(),
    );
    for layer in [1usize, 2, 5] {
        let tgd_grad = weight_gradient(&tgd, layer, input.clone(), target.clone());
        let mask_grad = weight_gradient(&masked, layer, input.clone(), target.clone());
        let reference = gradient_with_kept_channels_constant(&network, &plan, layer, input.clone(), target.clone());
        let largest = reference.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        assert!(largest > 1e-4, "conv{layer}: no gradient to compare");
        let per_kernel = config.layers()[layer - 1].in_channels * 9;
        let mut differing_kernels = 0;
        for (kernel, retrained) in plan.retrain[layer - 1].iter().enumerate() {
            let range = kernel * per_kernel..(kernel + 1) * per_kernel;
            if !retrained {
                assert!(tgd_grad[range.clone()].iter().all(|g| *g == 0.0), "conv{layer} kept kernel {kernel}");
                assert!(mask_grad[range].iter().all(|g| *g == 0.0), "conv{layer} kept kernel {kernel}");
                continue;
            }
            for i in range.clone() {
                assert!(
                    (tgd_grad[i] - reference[i]).abs() <= 1e-5 * largest,
                    "conv{layer} weight {i}: TGD {} vs reference {}",
                    tgd_grad[i],
                    reference[i]
                );
            }
            let gap: f32 = range.map(|i| (mask_grad[i] - reference[i]).abs()).fold(0.0, f32::max);
            differing_kernels += usize::from(gap > 0.05 * largest);
        }
        // conv1 and conv2 feed kept channels downstream, so the parameter mask (which lets
        // dL/dY through them) must give other gradients for flagged kernels.
        assert!(differing_kernels >= 2, "conv{layer}: parameter mask differs on only {differing_kernels} kernels");
    }
}

#[test]
fn kept_channels_held_constant_reference_agrees_with_central_differences() {
    let (config, network) = small_network();
    let plan = alternating_plan(&network, UpdateRule::TgdLayer);
    let (input, target) = batch::<Ad>(11);
    let layer = 2;
    let reference = gradient_with_kept_channels_constant(&network, &plan, layer, input.clone(), target.clone());
    let largest = reference.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    let inner = network.valid();
    let (input, target) = (input.inner(), target.inner());
    let per_kernel = config.layers()[layer - 1].in_channels * 9;
    let mut errors = Vec::new();
    for kernel in [0usize, 2, 4] {
        let range = kernel * per_kernel..(kernel + 1) * per_kernel;
        for (index, expected) in range.clone().zip(&reference[range]) {
            // Central differences in f32 through ReLUs are only good for the larger gradients:
            // their absolute error is ≈ 5e-4 here whatever the gradient (ReLU kinks near the
            // perturbed pre-activations, f32 sums whose order depends on the CPU's SIMD width),
            // which exceeded 10 % of a 0.2 × largest gradient on an AMD EPYC.
            if expected.abs() < 0.3 * largest {
                continue;
            }
            let h = 1e-4f32;
            let plus = loss_with_kept_channels_frozen(&inner, &plan, layer, index, h, input.clone(), target.clone());
            let minus = loss_with_kept_channels_frozen(&inner, &plan, layer, index, -h, input.clone(), target.clone());
            let numeric = (plus - minus) / (2.0 * h as f64);
            let relative = (numeric - *expected as f64).abs() / expected.abs() as f64;
            assert!(relative <= 0.1, "weight {index}: reference {expected} vs central difference {numeric}");
            errors.push(relative);
        }
    }
    assert!(errors.len() >= 5, "only {} weights had a gradient large enough to check", errors.len());
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(mean <= 0.03, "mean relative gap to central differences {mean:.3}");
}

fn assert_only_retrained_changed(before: &ModelWeights, after: &ModelWeights, plan: &UpdatePlan) {
    let mut changed_retrained = 0;
    for (i, retrain) in plan.retrain.iter().enumerate() {
        let index = i + 1;
        let mut names_here = vec![names::conv_weight(index), names::conv_bias(index)];
        if before.get(&names::bn_gamma(index)).is_some() {
            names_here.extend([
                names::bn_gamma(index),
                names::bn_beta(index),
                names::bn_running_mean(index),
                names::bn_running_var(index),
            ]);
        }
        for name in names_here {
            let (b, a) = (before.require(&name).expect("before"), after.require(&name).expect("after"));
            let per_channel = b.values.len() / retrain.len();
            for (c, r) in retrain.iter().enumerate() {
                let range = c * per_channel..(c + 1) * per_channel;
                let same =
                    b.values[range.clone()].iter().zip(&a.values[range]).all(|(x, y)| x.to_bits() == y.to_bits());
                if *r {
                    changed_retrained += usize::from(!same);
                } else {
                    assert!(same, "{name} channel {c} is kept but changed");
                }
            }
        }
    }
    assert!(changed_retrained > 0, "the step changed no retrained parameter");
}

#[test]
fn tgd_steps_change_only_masked_parameters_under_both_rules() {
    for rule in [UpdateRule::TgdLayer, UpdateRule::ParameterMask] {
        let (_, network) = small_network();
        let plan = kse_plan(&network, 0.3, rule);
        assert!(plan.retrain.last().expect("conv8").iter().all(|r| !r), "conv8 is never retrained");
        assert!(plan.retrain.iter().flatten().any(|r| *r), "φ = 0.3 flags some channels");
        let before = network.to_weights();
        let settings = OptimizerSettings { learning_rate: 1e-2, weight_decay: 1e-3, ..OptimizerSettings::default() };
        let mut trainer = Trainer::new(network, plan.clone(), settings);
        for seed in 0..3 {
            let (input, target) = batch::<Ad>(100 + seed);
            trainer.step(input, target);
        }
        let after = trainer.network().to_weights();
        assert_only_retrained_changed(&before, &after, &plan);
    }
}

#[test]
fn last_layers_plan_trains_only_the_last_convolutions() {
    let (_, network) = small_network();
    let plan = UpdatePlan::last_layers(&network, 3);
    assert_eq!(plan.retrain.iter().filter(|r| r.iter().all(|x| *x)).count(), 3);
    let before = network.to_weights();
    let mut trainer = Trainer::new(network, plan.clone(), OptimizerSettings::default());
    let (input, target) = batch::<Ad>(5);
    trainer.step(input, target);
    assert_only_retrained_changed(&before, &trainer.network().to_weights(), &plan);
}

#[test]
fn training_reduces_the_loss() {
    let (_, network) = small_network();
    let plan = UpdatePlan::everything(&network);
    let mut trainer = Trainer::new(network, plan, OptimizerSettings::default());
    let (input, target) = batch::<Ad>(3);
    let first = trainer.step(input.clone(), target.clone());
    let mut last = first;
    for _ in 0..15 {
        last = trainer.step(input.clone(), target.clone());
    }
    assert!(last < first, "loss {first} → {last}");
}

#[test]
fn tgd_two_passes_keep_everything_outside_the_union_of_their_masks() {
    use super::tgd_passes::run_tgd_passes;
    let (_, network) = small_network();
    let before = network.to_weights();
    let settings = OptimizerSettings { learning_rate: 2e-2, ..OptimizerSettings::default() };
    let (network, report) = run_tgd_passes(network, 2, 0.3, UpdateRule::TgdLayer, settings, |pass, trainer| {
        for step in 0..4 {
            let (input, target) = batch::<Ad>(200 + 10 * pass as u64 + step);
            trainer.step(input, target);
        }
        Ok::<(), std::convert::Infallible>(())
    })
    .expect("two passes");
    assert_eq!(report.passes.len(), 2);
    assert_ne!(
        report.passes[0].layers.iter().map(|l| l.retrain.clone()).collect::<Vec<_>>(),
        report.passes[1].layers.iter().map(|l| l.retrain.clone()).collect::<Vec<_>>(),
        "KSE is recomputed on the fine-tuned network, so the second pass has its own mask"
    );
    let union = UpdatePlan { retrain: report.union.clone(), rule: UpdateRule::TgdLayer };
    assert_only_retrained_changed(&before, &network.to_weights(), &union);
}

mod rounds {
    use super::super::n2n_round::{Flow, N2nPair, RoundError, RoundSettings, run_round};
    use super::*;
    use crate::science::image::Image3;
    use crate::science::simulation::acquisition::ScannerModel;
    use crate::science::simulation::osem::reconstruct;
    use crate::science::simulation::{Grid, ReconVersion, Scan};

    fn pair() -> N2nPair {
        let scan = Scan::acquire(9, Grid::new(32, 8), ScannerModel::default(), 120.0);
        let (a, b) = scan.n2n_halves();
        let recon = ReconVersion::V2.settings();
        N2nPair { a: reconstruct(&scan.system, &a, &recon, &|| {}), b: reconstruct(&scan.system, &b, &recon, &|| {}) }
    }

    fn parent() -> crate::science::model::directory::StoredModel {
        crate::science::model::pseudo_random::pseudo_random_model(DnCnnConfig::scaled(0.25), 5).expect("model")
    }

    #[test]
    fn an_n2n_round_changes_only_what_its_passes_masked_and_reports_it() {
        let (parent, pair) = (parent(), pair());
        let settings = RoundSettings { steps_per_pass: 3, tgd_passes: 2, batch: 4, patch: 16, ..Default::default() };
        let mut seen = Vec::new();
        let mut observer = |step: usize, total: usize, _loss: f64| {
            seen.push((step, total));
            Flow::Continue
        };
        let outcome = run_round::<Ad>(&parent, &pair, None, &settings, &mut observer).expect("round");
        assert_eq!(seen, (1..=6).map(|s| (s, 6)).collect::<Vec<_>>());
        let report = &outcome.report;
        assert_eq!(report.passes.len(), 2);
        assert_eq!(report.held_out, vec![2, 6]);
        assert!(report.fraction_retrained > 0.0 && report.fraction_retrained < 1.0, "{}", report.fraction_retrained);
        assert!(report.validation_loss_parent.is_finite() && report.validation_loss.is_finite());
        let mut union: Vec<Vec<bool>> = report.passes[0].layers.iter().map(|l| l.retrain.clone()).collect();
        for pass in &report.passes[1..] {
            for (u, layer) in union.iter_mut().zip(&pass.layers) {
                u.iter_mut().zip(&layer.retrain).for_each(|(u, r)| *u |= *r);
            }
        }
        let plan = UpdatePlan { retrain: union, rule: UpdateRule::TgdLayer };
        assert_only_retrained_changed(&parent.weights, &outcome.model.weights, &plan);
    }

    #[test]
    fn batches_drawn_again_are_the_rounds_own() {
        use super::super::fine_tune::{mean_batch_loss, round_sampling};
        use super::super::n2n_round::outside_held_out;
        let (parent, pair) = (parent(), pair());
        let settings = RoundSettings {
            steps_per_pass: 4,
            batch: 4,
            patch: 16,
            batch_statistics: super::super::trainer::BatchStatistics::Frozen,
            ..Default::default()
        };
        let mut go_on = |_: usize, _: usize, _: f64| Flow::Continue;
        let outcome = run_round::<Ad>(&parent, &pair, None, &settings, &mut go_on).expect("round");
        let report = &outcome.report;
        let pairs = outside_held_out(&[(&pair.a, &pair.b), (&pair.b, &pair.a)], &report.held_out, &pair, &settings);
        let sampler = super::super::base::patches::PatchSampler::new(&pairs, round_sampling(&parent, &settings));
        // The first step's loss is the parent's on the first batch, before any step.
        let first = mean_batch_loss(&parent, &sampler, &settings, 0..1).expect("loss");
        let seen = report.losses[0].loss;
        assert!((first - seen).abs() <= 1e-5 * seen, "re-drawn {first}, while stepping {seen}");
        // A later batch is another batch.
        let second = mean_batch_loss(&parent, &sampler, &settings, 1..2).expect("loss");
        assert!((second - first).abs() > 1e-6 * first, "{first} {second}");
    }

    #[test]
    fn averaged_batch_norm_statistics_leave_kept_channels_bit_identical() {
        let (parent, pair) = (parent(), pair());
        let settings = RoundSettings {
            steps_per_pass: 3,
            batch: 4,
            patch: 16,
            batch_statistics: crate::science::training::trainer::BatchStatistics::PerBatch,
            batch_norm_batches: 4,
            ..Default::default()
        };
        let mut go_on = |_: usize, _: usize, _: f64| Flow::Continue;
        let outcome = run_round::<Ad>(&parent, &pair, None, &settings, &mut go_on).expect("round");
        let plan = UpdatePlan::from_mask(&outcome.report.passes[0], UpdateRule::TgdLayer);
        assert_only_retrained_changed(&parent.weights, &outcome.model.weights, &plan);
        // Against the same round without averaging: only the retrained channels' running
        // statistics differ, and some do.
        let plain = RoundSettings { batch_norm_batches: 0, ..settings };
        let steps_only = run_round::<Ad>(&parent, &pair, None, &plain, &mut go_on).expect("round");
        let mut averaged_channels = 0;
        for (i, retrain) in plan.retrain.iter().enumerate().filter(|(i, _)| (1..plan.retrain.len() - 1).contains(i)) {
            for name in [names::bn_running_mean(i + 1), names::bn_running_var(i + 1)] {
                let (a, b) = (
                    outcome.model.weights.require(&name).expect("a"),
                    steps_only.model.weights.require(&name).expect("b"),
                );
                for (c, r) in retrain.iter().enumerate() {
                    let same = a.values[c].to_bits() == b.values[c].to_bits();
                    assert!(*r || same, "{name}[{c}] is kept but was averaged");
                    averaged_channels += usize::from(!same);
                }
            }
        }
        assert!(averaged_channels > 0, "no retrained channel's statistics were averaged");
    }

    /// Mean squared difference of the 4×4 block means of two images.
    fn block_mean_difference(reference: &Image3, output: &Image3) -> f64 {
        let grid = reference.grid;
        let mut sum = 0.0;
        let mut blocks = 0;
        for z in 0..grid.slices {
            for by in (0..grid.size).step_by(4) {
                for bx in (0..grid.size).step_by(4) {
                    let block = |image: &Image3| -> f64 {
                        (by..by + 4)
                            .flat_map(|y| (bx..bx + 4).map(move |x| (y, x)))
                            .map(|(y, x)| f64::from(image.data[(z * grid.size + y) * grid.size + x]))
                            .sum::<f64>()
                            / 16.0
                    };
                    sum += (block(output) - block(reference)).powi(2);
                    blocks += 1;
                }
            }
        }
        sum / f64::from(blocks)
    }

    #[test]
    fn the_anchor_holds_block_means_where_the_targets_pull_them_away() {
        use super::super::fine_tune::{FineTuneData, fine_tune};
        use super::super::n2n_round::{AnchorReference, RoundKind, anchor_pair, held_out_slices, outside_held_out};
        use crate::science::model::burn_denoise::denoise_with_burn;
        let (parent, pair) = (parent(), pair());
        let scan = Scan::acquire(9, Grid::new(32, 8), ScannerModel::default(), 120.0);
        let full = reconstruct(&scan.system, &scan.counts, &ReconVersion::V2.settings(), &|| {});
        let by_parent = denoise_with_burn(&parent, &full).expect("parent");
        // Targets 30 % brighter than the halves: learning them moves every block's mean.
        let brighter = |image: &Image3| Image3 { grid: image.grid, data: image.data.iter().map(|v| v * 1.3).collect() };
        let (target_a, target_b) = (brighter(&pair.a), brighter(&pair.b));
        let free = RoundSettings {
            kind: RoundKind::TgdParameterMask,
            phi: 0.5,
            steps_per_pass: 12,
            learning_rate: 1e-2,
            batch: 4,
            patch: 16,
            ..Default::default()
        };
        let held_out = held_out_slices(full.grid.slices, free.validation_fraction);
        let output = |settings: &RoundSettings| {
            let pairs = outside_held_out(&[(&pair.a, &target_b), (&pair.b, &target_a)], &held_out, &pair, settings);
            let anchor = anchor_pair(&parent, &full, &held_out, settings).expect("anchor");
            assert_eq!(anchor.is_some(), settings.anchor_weight > 0.0);
            let data = FineTuneData { pairs: &pairs, anchor: anchor.as_ref() };
            let mut go_on = |_: usize, _: usize, _: f64| Flow::Continue;
            let tuned = fine_tune::<Ad>(&parent, data, settings, &mut go_on).expect("fine-tune");
            denoise_with_burn(&tuned.model, &full).expect("new")
        };
        let unanchored = output(&free);
        for (reference, image) in [(AnchorReference::Parent, &by_parent), (AnchorReference::Input, &full)] {
            let anchored = RoundSettings { anchor_weight: 1000.0, anchor_reference: reference, ..free.clone() };
            let (with, without) =
                (block_mean_difference(image, &output(&anchored)), block_mean_difference(image, &unanchored));
            assert!(with < 0.5 * without, "{reference:?}: block means off by {with} anchored, {without} free");
        }
    }

    #[test]
    fn a_cancelled_round_stops_within_one_step() {
        let (parent, pair) = (parent(), pair());
        let settings = RoundSettings { steps_per_pass: 50, batch: 2, patch: 16, ..Default::default() };
        let mut steps = 0;
        let mut observer = |step: usize, _total: usize, _loss: f64| {
            steps = step;
            if step == 2 { Flow::Cancel } else { Flow::Continue }
        };
        let result = run_round::<Ad>(&parent, &pair, None, &settings, &mut observer);
        assert!(matches!(result, Err(RoundError::Cancelled)), "{result:?}");
        assert_eq!(steps, 2, "no step ran after the cancel");
    }
}

/// The group lasso is the sum of each input channel's kernel norm over conv2 and up, and
/// training with it lowers that sum.
#[test]
fn the_channel_group_lasso_sums_input_channel_norms_and_training_lowers_it() {
    use super::trainer::channel_group_lasso;
    let (config, network) = small_network();
    let weights = network.to_weights();
    let mut expected = 0.0f64;
    for layer in config.layers().iter().skip(1) {
        let tensor = weights.require(&names::conv_weight(layer.index)).expect("weights");
        let (outputs, inputs) = (tensor.shape[0], tensor.shape[1]);
        for c in 0..inputs {
            let squares: f64 = (0..outputs)
                .flat_map(|n| {
                    let start = (n * inputs + c) * 9;
                    tensor.values[start..start + 9].iter().map(|v| f64::from(*v).powi(2)).collect::<Vec<_>>()
                })
                .sum();
            expected += squares.sqrt();
        }
    }
    let computed = f64::from(channel_group_lasso(&network).into_scalar());
    assert!((computed - expected).abs() < 1e-3 * expected, "{computed} against {expected}");

    // Trained with the penalty, the norms it sums end lower than trained without: the term
    // is in the gradient. (Whether it frees channels KSE can flag is another matter; under
    // BatchNorm it mostly shrinks a layer's kernels together, see docs/learning.md.)
    let train = |sparsity: f64| {
        let (_, network) = small_network();
        let settings =
            OptimizerSettings { learning_rate: 1e-2, channel_sparsity: sparsity, ..OptimizerSettings::default() };
        let mut trainer = Trainer::new(network.clone(), UpdatePlan::everything(&network), settings);
        for step in 0..30 {
            let (input, target) = batch::<Ad>(500 + step);
            trainer.step(input, target);
        }
        f64::from(channel_group_lasso(trainer.network()).into_scalar())
    };
    let (plain, sparse) = (train(0.0), train(0.05));
    assert!(
        sparse < 0.9 * plain,
        "summed channel norms after training: {plain:.3} plain, {sparse:.3} with the penalty"
    );
}
