//! Tests of ONNX export and import: exact round trips, the folding math against a naive
//! reference forward pass, graphs shaped like other exporters' output, and hostile input.

use prost::Message;

use super::proto::tensor_shape_proto::dimension;
use super::proto::{AttributeProto, ModelProto, NodeProto, TensorProto, attribute_type, data_type, type_proto};
use super::*;
use crate::science::model::config::DnCnnConfig;
use crate::science::model::weights::{ModelWeights, Tensor32, names};

/// Deterministic pseudo-random numbers in [-0.5, 0.5).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    fn values(&mut self, len: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..len).map(|_| offset + scale * self.next()).collect()
    }
}

fn small_config() -> DnCnnConfig {
    DnCnnConfig::scaled(0.25)
}

/// He-scaled kernels, small biases, and BatchNorm statistics far enough from identity that
/// folding them matters.
fn random_weights(config: &DnCnnConfig, seed: u64) -> ModelWeights {
    let mut rng = Lcg(seed);
    let mut weights = ModelWeights::default();
    for layer in config.layers() {
        let (i, inputs, out) = (layer.index, layer.in_channels, layer.out_channels);
        let bound = 2.0 * (6.0 / (inputs * 9) as f32).sqrt();
        weights.insert(
            names::conv_weight(i),
            Tensor32::new(vec![out, inputs, 3, 3], rng.values(out * inputs * 9, bound, 0.0)),
        );
        weights.insert(names::conv_bias(i), Tensor32::new(vec![out], rng.values(out, 0.2, 0.0)));
        if layer.batch_norm {
            weights.insert(names::bn_gamma(i), Tensor32::new(vec![out], rng.values(out, 0.8, 1.0)));
            weights.insert(names::bn_beta(i), Tensor32::new(vec![out], rng.values(out, 0.4, 0.0)));
            weights.insert(names::bn_running_mean(i), Tensor32::new(vec![out], rng.values(out, 0.6, 0.0)));
            weights.insert(names::bn_running_var(i), Tensor32::new(vec![out], rng.values(out, 1.5, 1.0)));
        }
    }
    weights.check(config).expect("complete weights");
    weights
}

/// Same names, shapes and bit patterns; names the first tensor that differs.
fn assert_bit_identical(found: &ModelWeights, expected: &ModelWeights) {
    let names = |w: &ModelWeights| w.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(found), names(expected));
    for (name, tensor) in expected.iter() {
        let other = found.get(name).expect("tensor");
        let bits = |t: &Tensor32| t.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert!(other.shape == tensor.shape && bits(other) == bits(tensor), "{name} differs");
    }
}

fn decode(bytes: &[u8]) -> ModelProto {
    ModelProto::decode(bytes).expect("decodes")
}

fn graph_mut(model: &mut ModelProto) -> &mut super::proto::GraphProto {
    model.graph.as_mut().expect("graph")
}

/// Re-encodes an exported model after `change`.
fn edited(bytes: &[u8], change: impl FnOnce(&mut ModelProto)) -> Vec<u8> {
    let mut model = decode(bytes);
    change(&mut model);
    model.encode_to_vec()
}

fn node_mut<'a>(model: &'a mut ModelProto, name: &str) -> &'a mut NodeProto {
    graph_mut(model).node.iter_mut().find(|n| n.name == name).expect("node")
}

fn set_ints(node: &mut NodeProto, name: &str, ints: Vec<i64>) {
    node.attribute.retain(|a| a.name != name);
    node.attribute.push(AttributeProto { name: name.into(), r#type: attribute_type::INTS, ints, ..Default::default() });
}

/// Naive 3×3, padding 1 convolution of a [channels, h, w] image, in f64.
fn conv3x3(input: &[f64], h: usize, w: usize, weight: &Tensor32, bias: &Tensor32) -> Vec<f64> {
    let (out_c, in_c) = (weight.shape[0], weight.shape[1]);
    let mut out = vec![0.0; out_c * h * w];
    for o in 0..out_c {
        for y in 0..h {
            for x in 0..w {
                let mut acc = f64::from(bias.values[o]);
                for c in 0..in_c {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (y + ky, x + kx);
                            if iy < 1 || ix < 1 || iy > h || ix > w {
                                continue;
                            }
                            let k = f64::from(weight.values[((o * in_c + c) * 3 + ky) * 3 + kx]);
                            acc += k * input[(c * h + iy - 1) * w + ix - 1];
                        }
                    }
                }
                out[(o * h + y) * w + x] = acc;
            }
        }
    }
    out
}

/// The network on one [slices, h, w] window: (predicted noise, output = input − noise).
fn reference_forward(
    config: &DnCnnConfig,
    weights: &ModelWeights,
    input: &[f64],
    h: usize,
    w: usize,
) -> (Vec<f64>, Vec<f64>) {
    let get = |name: String| weights.get(&name).expect("tensor");
    let layers = config.layers();
    let mut x = input.to_vec();
    for layer in &layers {
        let i = layer.index;
        x = conv3x3(&x, h, w, get(names::conv_weight(i)), get(names::conv_bias(i)));
        if layer.batch_norm {
            let (gamma, beta) = (get(names::bn_gamma(i)), get(names::bn_beta(i)));
            let (mean, var) = (get(names::bn_running_mean(i)), get(names::bn_running_var(i)));
            for (c, channel) in x.chunks_mut(h * w).enumerate() {
                let scale = f64::from(gamma.values[c]) / (f64::from(var.values[c]) + config.batch_norm_epsilon).sqrt();
                for v in channel {
                    *v = (*v - f64::from(mean.values[c])) * scale + f64::from(beta.values[c]);
                }
            }
        }
        if layer.index < layers.len() {
            x.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
    let output = input.iter().zip(&x).map(|(a, n)| a - n).collect();
    (x, output)
}

fn max_relative_difference(a: &[f64], b: &[f64]) -> f64 {
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn faithful_round_trip_is_bit_exact() {
    let config = small_config();
    let weights = random_weights(&config, 7);
    let bytes = export_faithful(&config, &weights).expect("export");
    assert_eq!(export_faithful(&config, &weights).expect("export"), bytes, "export is deterministic");

    let imported = import(&bytes).expect("import");
    assert_eq!(imported.form, OnnxForm::Faithful);
    assert_eq!(imported.config, config);
    assert_bit_identical(&imported.weights, &weights);
}

#[test]
fn exported_graphs_have_the_documented_shape() {
    let config = small_config();
    let weights = random_weights(&config, 3);
    for (form, bytes) in [
        (OnnxForm::Faithful, export_faithful(&config, &weights).expect("export")),
        (OnnxForm::Folded, export_folded(&config, &weights).expect("export")),
    ] {
        let model = decode(&bytes);
        assert_eq!((model.ir_version, model.producer_name.as_str()), (IR_VERSION, "petal"));
        assert_eq!(model.opset_import.len(), 1);
        assert_eq!((model.opset_import[0].domain.as_str(), model.opset_import[0].version), ("", 17));
        let graph = model.graph.expect("graph");
        for (values, name) in [(&graph.input, INPUT_NAME), (&graph.output, OUTPUT_NAME)] {
            assert_eq!(values.len(), 1);
            assert_eq!(values[0].name, name);
            let Some(type_proto::Value::TensorType(tensor)) = values[0].r#type.as_ref().and_then(|t| t.value.clone())
            else {
                panic!("tensor type")
            };
            assert_eq!(tensor.elem_type, data_type::FLOAT);
            let dims: Vec<_> = tensor.shape.expect("shape").dim.into_iter().map(|d| d.value).collect();
            assert_eq!(
                dims,
                vec![
                    Some(dimension::Value::DimParam("batch".into())),
                    Some(dimension::Value::DimValue(3)),
                    Some(dimension::Value::DimParam("height".into())),
                    Some(dimension::Value::DimParam("width".into())),
                ]
            );
        }
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        let bn = ops.iter().filter(|o| **o == "BatchNormalization").count();
        assert_eq!(ops.iter().filter(|o| **o == "Conv").count(), 8);
        assert_eq!(ops.iter().filter(|o| **o == "Relu").count(), 7);
        assert_eq!(ops.last(), Some(&"Sub"));
        assert_eq!(ops.len(), 8 + 7 + 1 + bn);
        match form {
            OnnxForm::Faithful => {
                assert_eq!(bn, 6);
                let node = graph.node.iter().find(|n| n.name == "bn2").expect("bn2");
                let attr = |name: &str| node.attribute.iter().find(|a| a.name == name).expect("attribute").f;
                assert_eq!(attr("epsilon"), 1e-5f32);
                assert_eq!(attr("momentum"), 0.9f32);
                assert!(graph.initializer.iter().any(|t| t.name == "bn7.running_var"));
                assert_eq!(graph.initializer.len(), 8 * 2 + 6 * 4);
            }
            OnnxForm::Folded => {
                assert_eq!(bn, 0);
                assert_eq!(graph.initializer.len(), 8 * 2);
            }
        }
    }
}

#[test]
fn config_is_inferred_without_petal_metadata() {
    let config = small_config().with_batch_norm_epsilon(1e-3).with_batch_norm_momentum(0.05);
    let weights = random_weights(&config, 11);
    let bytes = edited(&export_faithful(&config, &weights).expect("export"), |m| m.metadata_props.clear());
    let imported = import(&bytes).expect("import");
    assert_eq!(imported.config.widths(), config.widths());
    assert_eq!(imported.config.hidden_widths, vec![16, 16, 32, 32, 32, 64, 64]);
    assert_eq!(imported.config.width_multiplier, 1.0);
    assert_eq!(imported.config.input_slices, 3);
    assert_eq!(imported.config.batch_norm_epsilon, 1e-3);
    assert_eq!(imported.config.batch_norm_momentum, 0.05);
    assert_bit_identical(&imported.weights, &weights);
}

#[test]
fn folded_import_has_identity_batch_norm() {
    let config = small_config();
    let weights = random_weights(&config, 5);
    let imported = import(&export_folded(&config, &weights).expect("export")).expect("import");
    assert_eq!(imported.form, OnnxForm::Folded);
    assert_eq!(imported.config, config);
    let identity_var = (1.0 - config.batch_norm_epsilon) as f32;
    for layer in config.layers() {
        let i = layer.index;
        if layer.batch_norm {
            let get = |name: String| imported.weights.get(&name).expect("tensor").values.clone();
            assert!(get(names::bn_gamma(i)).iter().all(|v| *v == 1.0));
            assert!(get(names::bn_beta(i)).iter().all(|v| *v == 0.0));
            assert!(get(names::bn_running_mean(i)).iter().all(|v| *v == 0.0));
            assert!(get(names::bn_running_var(i)).iter().all(|v| *v == identity_var));
            assert_ne!(imported.weights.get(&names::conv_weight(i)), weights.get(&names::conv_weight(i)));
        } else {
            // conv1 and conv8 have no BatchNorm: written unchanged.
            assert_eq!(imported.weights.get(&names::conv_weight(i)), weights.get(&names::conv_weight(i)));
            assert_eq!(imported.weights.get(&names::conv_bias(i)), weights.get(&names::conv_bias(i)));
        }
    }
}

#[test]
fn folding_preserves_the_forward_pass() {
    let config = small_config();
    let weights = random_weights(&config, 13);
    let folded = import(&export_folded(&config, &weights).expect("export")).expect("import");
    let (h, w) = (8, 8);
    let mut rng = Lcg(99);
    let input: Vec<f64> = (0..3 * h * w).map(|_| f64::from(rng.next() + 0.5) * 4.0).collect();

    let (noise, output) = reference_forward(&config, &weights, &input, h, w);
    let (folded_noise, folded_output) = reference_forward(&folded.config, &folded.weights, &input, h, w);
    assert!(noise.iter().any(|v| v.abs() > 1e-2), "the test network predicts some noise");
    let noise_error = max_relative_difference(&noise, &folded_noise);
    assert!(noise_error < 1e-5, "folded noise differs by {noise_error:e} (relative)");
    assert!(max_relative_difference(&output, &folded_output) < 1e-5);

    // The check is sensitive: dropping the BatchNorm statistics instead of folding them
    // changes the output far beyond the tolerance.
    let mut unfolded = folded.weights.clone();
    for layer in config.layers() {
        let name = names::conv_weight(layer.index);
        unfolded.insert(name.clone(), weights.get(&name).expect("weight").clone());
        let name = names::conv_bias(layer.index);
        unfolded.insert(name.clone(), weights.get(&name).expect("bias").clone());
    }
    let (wrong_noise, _) = reference_forward(&config, &unfolded, &input, h, w);
    assert!(max_relative_difference(&noise, &wrong_noise) > 1e-2);
}

/// A graph as other exporters write it: anonymous nodes, opaque tensor names, values in
/// `float_data`, a weight from a Constant node, and a Conv without bias.
#[test]
fn foreign_names_float_data_constants_and_missing_bias_import() {
    let config = small_config();
    let weights = random_weights(&config, 17);
    let bytes = edited(&export_faithful(&config, &weights).expect("export"), |model| {
        model.metadata_props.clear();
        let graph = graph_mut(model);
        let mut renames = Vec::new();
        for (k, tensor) in graph.initializer.iter_mut().enumerate() {
            let new = format!("onnx::Param_{k}");
            renames.push((tensor.name.clone(), new.clone()));
            tensor.name = new;
            tensor.float_data =
                tensor.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            tensor.raw_data.clear();
        }
        for node in &mut graph.node {
            node.name.clear();
            for input in &mut node.input {
                if let Some((_, new)) = renames.iter().find(|(old, _)| old == input) {
                    *input = new.clone();
                }
            }
        }
        // conv5's weight as a Constant node in front of it.
        let conv5 = graph.node.iter().position(|n| n.op_type == "Conv" && n.output[0] == "conv5.out").expect("conv5");
        let weight_name = graph.node[conv5].input[1].clone();
        let at = graph.initializer.iter().position(|t| t.name == weight_name).expect("initializer");
        let tensor = graph.initializer.remove(at);
        graph.node.insert(
            conv5,
            NodeProto {
                op_type: "Constant".into(),
                output: vec![weight_name],
                attribute: vec![AttributeProto {
                    name: "value".into(),
                    r#type: attribute_type::TENSOR,
                    t: Some(tensor),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        // conv3 without bias (PyTorch's bias=False before BatchNorm).
        let conv3 = graph.node.iter_mut().find(|n| n.output[0] == "conv3.out").expect("conv3");
        conv3.input.truncate(2);
    });
    let imported = import(&bytes).expect("import");
    assert_eq!(imported.form, OnnxForm::Faithful);
    assert_eq!(imported.config.widths(), config.widths());
    let mut expected = weights.clone();
    expected.insert(names::conv_bias(3), Tensor32::filled(vec![32], 0.0));
    assert_bit_identical(&imported.weights, &expected);
}

#[test]
fn garbage_and_empty_bytes_are_refused() {
    assert!(matches!(import(b"not an onnx model at all"), Err(OnnxError::Decode(_))));
    assert!(matches!(import(&[]), Err(OnnxError::NoGraph)));
}

#[test]
fn a_5x5_convolution_is_refused_naming_the_node() {
    let config = small_config();
    let bytes = export_faithful(&config, &random_weights(&config, 1)).expect("export");
    let bytes = edited(&bytes, |model| {
        let tensor: &mut TensorProto =
            graph_mut(model).initializer.iter_mut().find(|t| t.name == "conv3.weight").expect("weight");
        tensor.dims = vec![32, 16, 5, 5];
        tensor.raw_data = vec![0; 32 * 16 * 25 * 4];
        let conv3 = node_mut(model, "conv3");
        set_ints(conv3, "kernel_shape", vec![5, 5]);
        set_ints(conv3, "pads", vec![2, 2, 2, 2]);
    });
    let error = import(&bytes).expect_err("5x5 refused");
    assert!(matches!(&error, OnnxError::ConvGeometry { node, .. } if node.starts_with("conv3")), "{error}");
    assert!(error.to_string().contains("5×5"), "{error}");
}

#[test]
fn other_conv_geometries_are_refused() {
    let config = small_config();
    let bytes = export_faithful(&config, &random_weights(&config, 1)).expect("export");
    for (attribute, ints) in [("pads", vec![0, 0, 0, 0]), ("strides", vec![2, 2]), ("dilations", vec![2, 2])] {
        let bad = edited(&bytes, |model| set_ints(node_mut(model, "conv6"), attribute, ints.clone()));
        let error = import(&bad).expect_err("refused");
        assert!(matches!(&error, OnnxError::ConvGeometry { node, .. } if node.starts_with("conv6")), "{error}");
    }
    let bad = edited(&bytes, |model| node_mut(model, "conv2").attribute.retain(|a| a.name != "pads"));
    assert!(matches!(import(&bad), Err(OnnxError::ConvGeometry { .. })));
}

#[test]
fn a_missing_initializer_is_named() {
    let config = small_config();
    let bytes = export_faithful(&config, &random_weights(&config, 1)).expect("export");
    let bytes = edited(&bytes, |model| graph_mut(model).initializer.retain(|t| t.name != "bn4.running_mean"));
    let error = import(&bytes).expect_err("refused");
    assert!(
        matches!(&error, OnnxError::MissingTensor { node, tensor } if node.starts_with("bn4") && tensor == "bn4.running_mean"),
        "{error}"
    );
}

#[test]
fn foreign_operators_and_broken_chains_are_refused() {
    let config = small_config();
    let bytes = export_faithful(&config, &random_weights(&config, 1)).expect("export");

    let bad = edited(&bytes, |model| node_mut(model, "relu3").op_type = "LeakyRelu".into());
    assert!(matches!(import(&bad), Err(OnnxError::UnsupportedNode { op_type, .. }) if op_type == "LeakyRelu"));

    // BatchNorm removed from conv4 only: neither form.
    let bad = edited(&bytes, |model| {
        let graph = graph_mut(model);
        graph.node.retain(|n| n.name != "bn4");
        let relu4 = graph.node.iter_mut().find(|n| n.name == "relu4").expect("relu4");
        relu4.input[0] = "conv4.out".into();
    });
    assert!(matches!(import(&bad), Err(OnnxError::Architecture(reason)) if reason.contains("conv4")));

    // Residual reversed: noise − input.
    let bad = edited(&bytes, |model| node_mut(model, "residual").input.reverse());
    assert!(matches!(import(&bad), Err(OnnxError::Chain { node, .. }) if node.starts_with("residual")));

    // Relu dropped between two convolutions.
    let bad = edited(&bytes, |model| {
        let graph = graph_mut(model);
        graph.node.retain(|n| n.name != "relu1");
        let conv2 = graph.node.iter_mut().find(|n| n.name == "conv2").expect("conv2");
        conv2.input[0] = "conv1.out".into();
    });
    assert!(matches!(import(&bad), Err(OnnxError::Chain { node, .. }) if node.starts_with("conv2")));

    // A double-precision weight.
    let bad = edited(&bytes, |model| {
        let tensor = graph_mut(model).initializer.iter_mut().find(|t| t.name == "conv1.weight").expect("weight");
        tensor.data_type = 11;
    });
    assert!(matches!(import(&bad), Err(OnnxError::TensorType { tensor, .. }) if tensor == "conv1.weight"));

    // Truncated raw data.
    let bad = edited(&bytes, |model| {
        let tensor = graph_mut(model).initializer.iter_mut().find(|t| t.name == "bn2.gamma").expect("gamma");
        tensor.raw_data.truncate(8);
    });
    assert!(matches!(import(&bad), Err(OnnxError::BadTensor { tensor, .. }) if tensor == "bn2.gamma"));
}

#[test]
fn export_refuses_incomplete_weights() {
    let config = small_config();
    let mut weights = random_weights(&config, 1);
    weights.insert(names::bn_gamma(2), Tensor32::filled(vec![3], 1.0));
    assert!(matches!(export_folded(&config, &weights), Err(OnnxError::Weights(_))));
    assert!(matches!(export_faithful(&small_config(), &ModelWeights::default()), Err(OnnxError::Weights(_))));
}
