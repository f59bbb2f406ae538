//! Reads an ONNX DnCNN into petal's config and named weights by walking the graph's
//! structure, not its names: Conv nodes in order, each optionally followed by
//! BatchNormalization, then Relu, and the final `Sub(input, noise)`. Tensors are found
//! through the node inputs (initializers or Constant nodes), so graphs exported from
//! PyTorch, with its own or anonymous names, import too. A graph whose hidden convolutions
//! have no BatchNormalization is the folded form and gets identity BatchNorm.

use std::collections::HashMap;

use prost::Message;

use super::format::{METADATA_CONFIG, OnnxError, OnnxForm};
use super::proto::tensor_shape_proto::dimension;
use super::proto::{
    AttributeProto, DATA_LOCATION_EXTERNAL, ModelProto, NodeProto, TensorProto, ValueInfoProto, data_type, type_proto,
};
use crate::science::model::config::{DnCnnConfig, KERNEL_SIZE};
use crate::science::model::weights::{ModelWeights, Tensor32, names};

/// A DnCNN read from ONNX: its architecture, its tensors under petal's names, and which
/// form the graph had (folded graphs carry identity BatchNorm).
#[derive(Debug, Clone)]
pub struct ImportedModel {
    pub config: DnCnnConfig,
    pub weights: ModelWeights,
    pub form: OnnxForm,
}

/// ONNX's defaults for BatchNormalization attributes left out of a node.
const ONNX_DEFAULT_EPSILON: f32 = 1e-5;
const ONNX_DEFAULT_MOMENTUM: f32 = 0.9;

/// A tensor with the value name it was read under (for error messages).
struct Named {
    name: String,
    tensor: Tensor32,
}

struct BatchNormFound {
    node: String,
    gamma: Named,
    beta: Named,
    mean: Named,
    var: Named,
    epsilon: f32,
    momentum: f32,
}

struct LayerFound {
    node: String,
    weight: Named,
    bias: Option<Named>,
    batch_norm: Option<BatchNormFound>,
    relu: bool,
}

/// Reads ONNX model bytes as petal's DnCNN (faithful or folded form).
pub fn import(bytes: &[u8]) -> Result<ImportedModel, OnnxError> {
    let model = ModelProto::decode(bytes)?;
    let graph = model.graph.as_ref().ok_or(OnnxError::NoGraph)?;

    let mut constants: HashMap<&str, &TensorProto> = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    for node in graph.node.iter().filter(|n| n.op_type == "Constant") {
        if let (Some(output), Some(tensor)) = (node.output.first(), attribute(node, "value").and_then(|a| a.t.as_ref()))
        {
            constants.insert(output.as_str(), tensor);
        }
    }

    // Before IR version 4 initializers were listed among the inputs too.
    let inputs: Vec<&ValueInfoProto> =
        graph.input.iter().filter(|v| !constants.contains_key(v.name.as_str())).collect();
    let [input] = inputs.as_slice() else {
        return Err(OnnxError::Inputs { found: inputs.len(), names: value_names(inputs.iter().copied()) });
    };
    let [output] = graph.output.as_slice() else {
        return Err(OnnxError::Outputs { found: graph.output.len(), names: value_names(graph.output.iter()) });
    };
    let input_channels = check_input_type(input)?;

    let mut layers: Vec<LayerFound> = Vec::new();
    let mut current = input.name.clone();
    let mut residual = false;
    for (index, node) in graph.node.iter().enumerate() {
        let label = node_label(index, node);
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(unsupported(&label, node));
        }
        match node.op_type.as_str() {
            "Constant" => {}
            "Identity" => {
                let source = node.input.first().map(String::as_str).unwrap_or_default();
                let target = single_output(node, &label)?;
                if source == current {
                    current = target.to_owned();
                } else if let Some(tensor) = constants.get(source).copied() {
                    constants.insert(target, tensor);
                } else {
                    return Err(chain(
                        &label,
                        format!("copies '{source}', which is neither the network's running value nor a constant"),
                    ));
                }
            }
            _ if residual => {
                return Err(chain(&label, "follows the residual Sub, which must end the network".to_owned()));
            }
            "Conv" => {
                expect_chain_input(node, &label, &current)?;
                if let Some(previous) = layers.last()
                    && !previous.relu
                {
                    return Err(chain(&label, format!("follows {} without a Relu in between", previous.node)));
                }
                let weight = required_tensor(node, 1, &label, &constants)?;
                let bias = optional_tensor(node, 2, &label, &constants)?;
                check_conv_geometry(node, &label, &weight)?;
                layers.push(LayerFound { node: label.clone(), weight, bias, batch_norm: None, relu: false });
                current = single_output(node, &label)?.to_owned();
            }
            "BatchNormalization" => {
                expect_chain_input(node, &label, &current)?;
                let found = read_batch_norm(node, &label, &constants)?;
                let Some(layer) = layers.last_mut().filter(|l| l.batch_norm.is_none() && !l.relu) else {
                    return Err(chain(&label, "BatchNormalization must directly follow a Conv".to_owned()));
                };
                layer.batch_norm = Some(found);
                current = single_output(node, &label)?.to_owned();
            }
            "Relu" => {
                expect_chain_input(node, &label, &current)?;
                let Some(layer) = layers.last_mut().filter(|l| !l.relu) else {
                    return Err(chain(&label, "Relu must follow a Conv or its BatchNormalization".to_owned()));
                };
                layer.relu = true;
                current = single_output(node, &label)?.to_owned();
            }
            "Sub" => {
                if node.input.len() != 2 || node.input[0] != input.name || node.input[1] != current {
                    return Err(chain(
                        &label,
                        format!(
                            "computes {:?}; petal's residual is Sub('{}', '{current}') (input minus predicted noise)",
                            node.input, input.name
                        ),
                    ));
                }
                if let Some(layer) = layers.last().filter(|l| l.relu) {
                    return Err(chain(
                        &label,
                        format!(
                            "the noise comes through a Relu after {}; petal's last Conv has no activation",
                            layer.node
                        ),
                    ));
                }
                residual = true;
                current = single_output(node, &label)?.to_owned();
            }
            _ => return Err(unsupported(&label, node)),
        }
    }
    if !residual || layers.is_empty() {
        return Err(OnnxError::Architecture(
            "no Sub node computes output = input − noise after the convolutions".to_owned(),
        ));
    }
    if current != output.name {
        return Err(OnnxError::Architecture(format!(
            "the residual Sub's result '{current}' is not the graph output '{}'",
            output.name
        )));
    }

    let (config, form) = infer_config(&model, &layers, input_channels)?;
    let weights = collect_weights(&config, layers)?;
    weights.check(&config)?;
    Ok(ImportedModel { config, weights, form })
}

/// Checks the layer chain against petal's architecture and derives the config.
fn infer_config(
    model: &ModelProto,
    layers: &[LayerFound],
    input_channels: Option<usize>,
) -> Result<(DnCnnConfig, OnnxForm), OnnxError> {
    let (3.., [first, hidden @ .., last]) = (layers.len(), layers) else {
        return Err(OnnxError::Architecture(format!(
            "{} convolution(s); petal's DnCNN has at least 3 (8 in the paper)",
            layers.len()
        )));
    };
    if let Some(bn) = &first.batch_norm {
        return Err(chain(
            &bn.node,
            format!("follows the first Conv {}, which petal follows by Relu only", first.node),
        ));
    }
    if let Some(bn) = &last.batch_norm {
        return Err(chain(
            &bn.node,
            format!("follows the last Conv {}, which has no normalisation in petal", last.node),
        ));
    }
    let normalised = hidden.iter().filter(|l| l.batch_norm.is_some()).count();
    let form = if normalised == hidden.len() {
        OnnxForm::Faithful
    } else if normalised == 0 {
        OnnxForm::Folded
    } else {
        let bare = hidden.iter().find(|l| l.batch_norm.is_none()).map(|l| l.node.clone()).unwrap_or_default();
        return Err(OnnxError::Architecture(format!(
            "Conv {bare} has no BatchNormalization while {normalised} other hidden convolutions do; \
             petal's graph has it after every hidden Conv (faithful) or after none (folded)"
        )));
    };

    let input_slices = first.weight.tensor.shape[1];
    if let Some(channels) = input_channels.filter(|c| *c != input_slices) {
        return Err(OnnxError::Architecture(format!(
            "the graph input has {channels} channels but the first Conv {} reads {input_slices}",
            first.node
        )));
    }
    let mut in_channels = input_slices;
    for layer in layers {
        let shape = &layer.weight.tensor.shape;
        let out = shape[0];
        let expected = vec![out, in_channels, KERNEL_SIZE, KERNEL_SIZE];
        if *shape != expected {
            return Err(shape_error(&layer.node, &layer.weight, expected));
        }
        if let Some(bias) = &layer.bias
            && bias.tensor.shape != [out]
        {
            return Err(shape_error(&layer.node, bias, vec![out]));
        }
        if let Some(bn) = &layer.batch_norm {
            for tensor in [&bn.gamma, &bn.beta, &bn.mean, &bn.var] {
                if tensor.tensor.shape != [out] {
                    return Err(shape_error(&bn.node, tensor, vec![out]));
                }
            }
        }
        in_channels = out;
    }
    if in_channels != input_slices {
        return Err(OnnxError::Architecture(format!(
            "the last Conv {} predicts {in_channels} channels of noise for an input of {input_slices} slices",
            last.node
        )));
    }

    let batch_norms: Vec<&BatchNormFound> = hidden.iter().filter_map(|l| l.batch_norm.as_ref()).collect();
    let (epsilon, momentum) =
        batch_norms.first().map_or((ONNX_DEFAULT_EPSILON, ONNX_DEFAULT_MOMENTUM), |bn| (bn.epsilon, bn.momentum));
    if let Some(other) = batch_norms.iter().find(|bn| bn.epsilon.to_bits() != epsilon.to_bits()) {
        return Err(OnnxError::Attribute {
            node: other.node.clone(),
            attribute: "epsilon".to_owned(),
            reason: format!(
                "{} differs from the {epsilon} of the first BatchNormalization; petal's config has one ε",
                other.epsilon
            ),
        });
    }

    let hidden_widths: Vec<usize> = layers[..layers.len() - 1].iter().map(|l| l.weight.tensor.shape[0]).collect();
    let mut config =
        DnCnnConfig::new().with_input_slices(input_slices).with_hidden_widths(hidden_widths).with_width_multiplier(1.0);
    if form == OnnxForm::Faithful {
        config =
            config.with_batch_norm_epsilon(decimal(epsilon)).with_batch_norm_momentum(tidy(1.0 - decimal(momentum)));
    }
    config.validate()?;
    let bn_attributes = (form == OnnxForm::Faithful).then_some((epsilon, momentum));
    Ok((exporter_config(model, &config, bn_attributes).unwrap_or(config), form))
}

/// The config petal's exporter stored in the metadata, when it describes this very graph
/// (same layers, same BatchNorm attributes): it keeps the width multiplier and exact ε.
fn exporter_config(model: &ModelProto, inferred: &DnCnnConfig, bn: Option<(f32, f32)>) -> Option<DnCnnConfig> {
    let entry = model.metadata_props.iter().find(|p| p.key == METADATA_CONFIG)?;
    let config: DnCnnConfig = serde_json::from_str(&entry.value).ok()?;
    config.validate().ok()?;
    if config.layers() != inferred.layers() {
        return None;
    }
    if let Some((epsilon, momentum)) = bn {
        let same_epsilon = (config.batch_norm_epsilon as f32).to_bits() == epsilon.to_bits();
        let same_momentum = ((1.0 - config.batch_norm_momentum) as f32).to_bits() == momentum.to_bits();
        if !(same_epsilon && same_momentum) {
            return None;
        }
    }
    Some(config)
}

/// Petal's named tensors from the layers found; folded layers get identity BatchNorm
/// (γ 1, β 0, mean 0, var 1 − ε, so that (x − 0)/√(var + ε) = x).
fn collect_weights(config: &DnCnnConfig, layers: Vec<LayerFound>) -> Result<ModelWeights, OnnxError> {
    let mut weights = ModelWeights::default();
    for (layer, shape) in layers.into_iter().zip(config.layers()) {
        let (i, out) = (shape.index, shape.out_channels);
        weights.insert(names::conv_weight(i), layer.weight.tensor);
        let bias = layer.bias.map_or_else(|| Tensor32::filled(vec![out], 0.0), |b| b.tensor);
        weights.insert(names::conv_bias(i), bias);
        if !shape.batch_norm {
            continue;
        }
        match layer.batch_norm {
            Some(bn) => {
                weights.insert(names::bn_gamma(i), bn.gamma.tensor);
                weights.insert(names::bn_beta(i), bn.beta.tensor);
                weights.insert(names::bn_running_mean(i), bn.mean.tensor);
                weights.insert(names::bn_running_var(i), bn.var.tensor);
            }
            None => {
                weights.insert(names::bn_gamma(i), Tensor32::filled(vec![out], 1.0));
                weights.insert(names::bn_beta(i), Tensor32::filled(vec![out], 0.0));
                weights.insert(names::bn_running_mean(i), Tensor32::filled(vec![out], 0.0));
                let var = (1.0 - config.batch_norm_epsilon) as f32;
                weights.insert(names::bn_running_var(i), Tensor32::filled(vec![out], var));
            }
        }
    }
    Ok(weights)
}

fn read_batch_norm(
    node: &NodeProto,
    label: &str,
    constants: &HashMap<&str, &TensorProto>,
) -> Result<BatchNormFound, OnnxError> {
    let training_mode = attribute(node, "training_mode").is_some_and(|a| a.i != 0);
    if training_mode || node.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(chain(
            label,
            "computes batch statistics (training mode); export the model in eval mode".to_owned(),
        ));
    }
    let epsilon = attribute(node, "epsilon").map_or(ONNX_DEFAULT_EPSILON, |a| a.f);
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(OnnxError::Attribute {
            node: label.to_owned(),
            attribute: "epsilon".to_owned(),
            reason: format!("{epsilon} must be a positive number"),
        });
    }
    let momentum = attribute(node, "momentum").map_or(ONNX_DEFAULT_MOMENTUM, |a| a.f);
    if !(0.0..=1.0).contains(&momentum) {
        return Err(OnnxError::Attribute {
            node: label.to_owned(),
            attribute: "momentum".to_owned(),
            reason: format!("{momentum} must lie in [0, 1]"),
        });
    }
    Ok(BatchNormFound {
        node: label.to_owned(),
        gamma: required_tensor(node, 1, label, constants)?,
        beta: required_tensor(node, 2, label, constants)?,
        mean: required_tensor(node, 3, label, constants)?,
        var: required_tensor(node, 4, label, constants)?,
        epsilon,
        momentum,
    })
}

/// Kernel 3×3, padding 1 on every side, stride 1, dilation 1, group 1.
fn check_conv_geometry(node: &NodeProto, label: &str, weight: &Named) -> Result<(), OnnxError> {
    let geometry = |reason: String| OnnxError::ConvGeometry { node: label.to_owned(), reason };
    let shape = &weight.tensor.shape;
    if shape.len() != 4 {
        return Err(geometry(format!("weight '{}' has shape {shape:?}, not [out, in, kh, kw]", weight.name)));
    }
    if shape[2..] != [KERNEL_SIZE, KERNEL_SIZE] {
        return Err(geometry(format!("weight '{}' has {}×{} kernels", weight.name, shape[2], shape[3])));
    }
    let k = KERNEL_SIZE as i64;
    if let Some(a) = attribute(node, "kernel_shape")
        && a.ints != [k, k]
    {
        return Err(geometry(format!("kernel_shape is {:?}", a.ints)));
    }
    for name in ["strides", "dilations"] {
        if let Some(a) = attribute(node, name)
            && a.ints.iter().any(|v| *v != 1)
        {
            return Err(geometry(format!("{name} is {:?}", a.ints)));
        }
    }
    if let Some(a) = attribute(node, "group")
        && a.i != 1
    {
        return Err(geometry(format!("group is {}", a.i)));
    }
    let auto_pad = attribute(node, "auto_pad").map(|a| String::from_utf8_lossy(&a.s).into_owned()).unwrap_or_default();
    match auto_pad.as_str() {
        // For a 3×3 kernel at stride 1 both SAME modes pad 1 on every side.
        "SAME_UPPER" | "SAME_LOWER" => Ok(()),
        "" | "NOTSET" => {
            let pads = attribute(node, "pads").map(|a| a.ints.clone()).unwrap_or_default();
            if pads == [1, 1, 1, 1] {
                Ok(())
            } else if pads.is_empty() {
                Err(geometry("no pads (zero padding shrinks every slice)".to_owned()))
            } else {
                Err(geometry(format!("pads are {pads:?}")))
            }
        }
        other => Err(geometry(format!("auto_pad is {other}"))),
    }
}

/// The channel count of the graph input if fixed; refuses non-float or non-4D inputs.
fn check_input_type(input: &ValueInfoProto) -> Result<Option<usize>, OnnxError> {
    let type_error = |reason: String| OnnxError::InputType { name: input.name.clone(), reason };
    let Some(type_proto::Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Ok(None);
    };
    if tensor.elem_type != data_type::FLOAT {
        return Err(type_error(format!("is {}; petal feeds float32", data_type::name(tensor.elem_type))));
    }
    let Some(shape) = &tensor.shape else { return Ok(None) };
    if shape.dim.len() != 4 {
        return Err(type_error(format!(
            "has {} dimensions; petal feeds [batch, slices, height, width]",
            shape.dim.len()
        )));
    }
    Ok(match shape.dim[1].value {
        Some(dimension::Value::DimValue(v)) => usize::try_from(v).ok(),
        _ => None,
    })
}

/// Reads a float32 tensor from `raw_data` (little endian) or `float_data`.
fn read_tensor(name: &str, proto: &TensorProto) -> Result<Tensor32, OnnxError> {
    let bad = |reason: String| OnnxError::BadTensor { tensor: name.to_owned(), reason };
    if proto.data_location == DATA_LOCATION_EXTERNAL || !proto.external_data.is_empty() {
        return Err(bad("its values are in an external data file; export the model with the weights embedded".into()));
    }
    if proto.data_type != data_type::FLOAT {
        return Err(OnnxError::TensorType { tensor: name.to_owned(), data_type: data_type::name(proto.data_type) });
    }
    let shape = proto
        .dims
        .iter()
        .map(|d| usize::try_from(*d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| bad(format!("negative dimension in {:?}", proto.dims)))?;
    let len = shape
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .ok_or_else(|| bad(format!("shape {shape:?} is too large")))?;
    let values = if !proto.raw_data.is_empty() {
        if Some(proto.raw_data.len()) != len.checked_mul(4) {
            return Err(bad(format!(
                "raw_data holds {} bytes; shape {shape:?} needs {len} float32 values",
                proto.raw_data.len()
            )));
        }
        proto.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    } else {
        if proto.float_data.len() != len {
            return Err(bad(format!(
                "float_data holds {} values; shape {shape:?} needs {len}",
                proto.float_data.len()
            )));
        }
        proto.float_data.clone()
    };
    Ok(Tensor32::new(shape, values))
}

/// The constant tensor a node reads at input `position`, which must be given.
fn required_tensor(
    node: &NodeProto,
    position: usize,
    label: &str,
    constants: &HashMap<&str, &TensorProto>,
) -> Result<Named, OnnxError> {
    let name = node.input.get(position).map(String::as_str).unwrap_or_default();
    let missing = || OnnxError::MissingTensor { node: label.to_owned(), tensor: name.to_owned() };
    if name.is_empty() {
        return Err(OnnxError::Chain {
            node: label.to_owned(),
            reason: format!("input {position} ({}) is not given", input_role(&node.op_type, position)),
        });
    }
    let proto = constants.get(name).ok_or_else(missing)?;
    Ok(Named { name: name.to_owned(), tensor: read_tensor(name, proto)? })
}

/// The constant tensor a node reads at an optional input `position`, if given.
fn optional_tensor(
    node: &NodeProto,
    position: usize,
    label: &str,
    constants: &HashMap<&str, &TensorProto>,
) -> Result<Option<Named>, OnnxError> {
    match node.input.get(position).filter(|n| !n.is_empty()) {
        None => Ok(None),
        Some(name) => match constants.get(name.as_str()) {
            Some(proto) => Ok(Some(Named { name: name.clone(), tensor: read_tensor(name, proto)? })),
            None => Err(OnnxError::MissingTensor { node: label.to_owned(), tensor: name.clone() }),
        },
    }
}

fn input_role(op_type: &str, position: usize) -> &'static str {
    match (op_type, position) {
        ("Conv", 1) => "the weight",
        ("BatchNormalization", 1) => "scale",
        ("BatchNormalization", 2) => "bias",
        ("BatchNormalization", 3) => "running mean",
        ("BatchNormalization", 4) => "running variance",
        _ => "a tensor",
    }
}

fn expect_chain_input(node: &NodeProto, label: &str, current: &str) -> Result<(), OnnxError> {
    let first = node.input.first().map(String::as_str).unwrap_or_default();
    if first == current {
        Ok(())
    } else {
        Err(chain(label, format!("reads '{first}' where the network's single chain of layers is at '{current}'")))
    }
}

fn single_output<'a>(node: &'a NodeProto, label: &str) -> Result<&'a str, OnnxError> {
    match node.output.first().filter(|o| !o.is_empty()) {
        Some(output) => Ok(output),
        None => Err(chain(label, "has no output".to_owned())),
    }
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// `name (OpType)` for a named node, `#index (OpType)` for an anonymous one.
fn node_label(index: usize, node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("#{index} ({})", node.op_type)
    } else {
        format!("{} ({})", node.name, node.op_type)
    }
}

fn value_names<'a>(values: impl Iterator<Item = &'a ValueInfoProto>) -> String {
    values.map(|v| format!("'{}'", v.name)).collect::<Vec<_>>().join(", ")
}

fn chain(label: &str, reason: String) -> OnnxError {
    OnnxError::Chain { node: label.to_owned(), reason }
}

fn unsupported(label: &str, node: &NodeProto) -> OnnxError {
    OnnxError::UnsupportedNode { node: label.to_owned(), op_type: node.op_type.clone(), domain: node.domain.clone() }
}

fn shape_error(node: &str, tensor: &Named, expected: Vec<usize>) -> OnnxError {
    OnnxError::TensorShape {
        node: node.to_owned(),
        tensor: tensor.name.clone(),
        expected,
        found: tensor.tensor.shape.clone(),
    }
}

/// The f64 an f32 attribute was meant to be (its shortest decimal form: 1e-5, not 9.99999974e-6).
fn decimal(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

/// Rounds to 9 significant digits, removing f64 noise such as 1 − 0.9 = 0.09999999999999998.
fn tidy(value: f64) -> f64 {
    format!("{value:.8e}").parse().unwrap_or(value)
}
