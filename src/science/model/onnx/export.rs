//! Writes petal's weights as an ONNX model: the faithful form (Conv + BatchNormalization,
//! every tensor under petal's name) or the folded form (BatchNorm folded into the
//! convolutions, computed in f64), opset 17, IR version 8, dynamic batch/height/width.

use prost::Message;

use super::format::{
    INPUT_NAME, IR_VERSION, METADATA_CONFIG, METADATA_FORM, OPSET_VERSION, OUTPUT_NAME, OnnxError, OnnxForm,
    PRODUCER_NAME,
};
use super::proto::tensor_shape_proto::{Dimension, dimension};
use super::proto::type_proto::{self, Tensor};
use super::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_type, data_type,
};
use crate::science::model::config::{DnCnnConfig, KERNEL_SIZE};
use crate::science::model::weights::{ModelWeights, Tensor32, names};

/// The faithful graph: Conv → BatchNormalization (ε and momentum attributes) → Relu, with
/// every parameter and running statistic as a float32 initializer named as in petal.
pub fn export_faithful(config: &DnCnnConfig, weights: &ModelWeights) -> Result<Vec<u8>, OnnxError> {
    export(config, weights, OnnxForm::Faithful)
}

/// The folded graph: each BatchNorm folded into the convolution before it
/// (w' = w·γ/√(var+ε) per output channel, b' = (b − mean)·γ/√(var+ε) + β, in f64, stored as
/// f32), so only Conv, Relu and Sub nodes remain. This is what the inference engine runs.
pub fn export_folded(config: &DnCnnConfig, weights: &ModelWeights) -> Result<Vec<u8>, OnnxError> {
    export(config, weights, OnnxForm::Folded)
}

fn export(config: &DnCnnConfig, weights: &ModelWeights, form: OnnxForm) -> Result<Vec<u8>, OnnxError> {
    config.validate()?;
    weights.check(config)?;

    let layers = config.layers();
    let mut graph = GraphProto {
        name: "petal_dncnn".to_owned(),
        doc_string: format!("petal 2.5D DnCNN, {form} form: output = input - predicted noise"),
        ..Default::default()
    };
    let mut current = INPUT_NAME.to_owned();
    for layer in &layers {
        let i = layer.index;
        let (weight_name, bias_name) = (names::conv_weight(i), names::conv_bias(i));
        let (weight, bias) = if form == OnnxForm::Folded && layer.batch_norm {
            fold(config, weights, i)?
        } else {
            (weights.require(&weight_name)?.clone(), weights.require(&bias_name)?.clone())
        };
        graph.initializer.push(float_tensor(&weight_name, &weight));
        graph.initializer.push(float_tensor(&bias_name, &bias));
        current =
            push_node(&mut graph, "Conv", format!("conv{i}"), vec![current, weight_name, bias_name], conv_attributes());

        if form == OnnxForm::Faithful && layer.batch_norm {
            let statistics =
                [names::bn_gamma(i), names::bn_beta(i), names::bn_running_mean(i), names::bn_running_var(i)];
            for name in &statistics {
                graph.initializer.push(float_tensor(name, weights.require(name)?));
            }
            let mut inputs = vec![current];
            inputs.extend(statistics);
            let attributes = vec![
                float_attribute("epsilon", config.batch_norm_epsilon as f32),
                // ONNX weighs the old running value by `momentum`; petal's config (PyTorch's
                // convention) weighs the new batch.
                float_attribute("momentum", (1.0 - config.batch_norm_momentum) as f32),
            ];
            current = push_node(&mut graph, "BatchNormalization", format!("bn{i}"), inputs, attributes);
        }
        if i < layers.len() {
            current = push_node(&mut graph, "Relu", format!("relu{i}"), vec![current], Vec::new());
        }
    }
    graph.node.push(NodeProto {
        name: "residual".to_owned(),
        op_type: "Sub".to_owned(),
        input: vec![INPUT_NAME.to_owned(), current],
        output: vec![OUTPUT_NAME.to_owned()],
        ..Default::default()
    });
    graph.input.push(window_value_info(INPUT_NAME, config.input_slices));
    graph.output.push(window_value_info(OUTPUT_NAME, config.input_slices));

    let mut metadata_props =
        vec![StringStringEntryProto { key: METADATA_FORM.to_owned(), value: form.as_str().to_owned() }];
    // A plain struct of numbers always serialises; without it import infers the config.
    if let Ok(value) = serde_json::to_string(config) {
        metadata_props.push(StringStringEntryProto { key: METADATA_CONFIG.to_owned(), value });
    }
    let model = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET_VERSION }],
        producer_name: PRODUCER_NAME.to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        doc_string: "petal 2.5D DnCNN (Chen et al., MICCAI 2021): 3 axial slices in, the same slices denoised out"
            .to_owned(),
        graph: Some(graph),
        metadata_props,
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

/// Folds BatchNorm `bn{index}` into `conv{index}`: the new weight and bias.
fn fold(config: &DnCnnConfig, weights: &ModelWeights, index: usize) -> Result<(Tensor32, Tensor32), OnnxError> {
    let weight = weights.require(&names::conv_weight(index))?;
    let bias = weights.require(&names::conv_bias(index))?;
    let gamma = weights.require(&names::bn_gamma(index))?;
    let beta = weights.require(&names::bn_beta(index))?;
    let mean = weights.require(&names::bn_running_mean(index))?;
    let var_name = names::bn_running_var(index);
    let var = weights.require(&var_name)?;
    let epsilon = config.batch_norm_epsilon;

    let per_channel = weight.values.len() / bias.values.len().max(1);
    let mut folded_weight = Vec::with_capacity(weight.values.len());
    let mut folded_bias = Vec::with_capacity(bias.values.len());
    for (c, kernel) in weight.values.chunks_exact(per_channel.max(1)).enumerate() {
        let denominator = f64::from(var.values[c]) + epsilon;
        if denominator <= 0.0 {
            return Err(OnnxError::BadTensor {
                tensor: var_name,
                reason: format!(
                    "channel {c} holds {}; running variance + ε must be positive to fold BatchNorm",
                    var.values[c]
                ),
            });
        }
        let scale = f64::from(gamma.values[c]) / denominator.sqrt();
        folded_weight.extend(kernel.iter().map(|w| (f64::from(*w) * scale) as f32));
        folded_bias
            .push(((f64::from(bias.values[c]) - f64::from(mean.values[c])) * scale + f64::from(beta.values[c])) as f32);
    }
    Ok((Tensor32::new(weight.shape.clone(), folded_weight), Tensor32::new(bias.shape.clone(), folded_bias)))
}

/// Appends a one-output node named `name` whose output is `{name}.out`; returns that output.
fn push_node(
    graph: &mut GraphProto,
    op_type: &str,
    name: String,
    input: Vec<String>,
    attribute: Vec<AttributeProto>,
) -> String {
    let output = format!("{name}.out");
    graph.node.push(NodeProto {
        name,
        op_type: op_type.to_owned(),
        input,
        output: vec![output.clone()],
        attribute,
        ..Default::default()
    });
    output
}

fn conv_attributes() -> Vec<AttributeProto> {
    let k = KERNEL_SIZE as i64;
    vec![
        ints_attribute("kernel_shape", vec![k, k]),
        ints_attribute("pads", vec![1, 1, 1, 1]),
        ints_attribute("strides", vec![1, 1]),
        ints_attribute("dilations", vec![1, 1]),
        AttributeProto { name: "group".to_owned(), r#type: attribute_type::INT, i: 1, ..Default::default() },
    ]
}

fn ints_attribute(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto { name: name.to_owned(), r#type: attribute_type::INTS, ints, ..Default::default() }
}

fn float_attribute(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.to_owned(), r#type: attribute_type::FLOAT, f, ..Default::default() }
}

/// A float32 initializer with its values in little-endian `raw_data`.
pub(super) fn float_tensor(name: &str, tensor: &Tensor32) -> TensorProto {
    TensorProto {
        name: name.to_owned(),
        dims: tensor.shape.iter().map(|d| *d as i64).collect(),
        data_type: data_type::FLOAT,
        raw_data: tensor.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// Float32 `[batch, slices, height, width]` with batch, height and width symbolic.
fn window_value_info(name: &str, slices: usize) -> ValueInfoProto {
    let param = |p: &str| Dimension { value: Some(dimension::Value::DimParam(p.to_owned())), ..Default::default() };
    let dim = vec![
        param("batch"),
        Dimension { value: Some(dimension::Value::DimValue(slices as i64)), ..Default::default() },
        param("height"),
        param("width"),
    ];
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(Tensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
