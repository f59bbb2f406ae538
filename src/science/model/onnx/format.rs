//! What the exported and imported ONNX graphs share: the input and output names, the
//! operator set and IR versions, petal's metadata keys, the two graph forms, and the errors.

use crate::science::model::config::ConfigError;
use crate::science::model::weights::WeightsError;

/// Name of the graph input: the window of `input_slices` slices, `[batch, slices, height, width]`.
pub const INPUT_NAME: &str = "input";
/// Name of the graph output: the denoised window, same shape as the input.
pub const OUTPUT_NAME: &str = "output";

/// Default-domain operator set the exported graphs use.
pub const OPSET_VERSION: i64 = 17;
/// ONNX IR version of the exported models (the one that goes with opset 17).
pub const IR_VERSION: i64 = 8;
/// `producer_name` of the exported models.
pub const PRODUCER_NAME: &str = "petal";
/// Model metadata key holding the exporter's `DnCnnConfig` as JSON; import prefers it to
/// the inferred config when it agrees with the graph.
pub const METADATA_CONFIG: &str = "petal.config";
/// Model metadata key holding `faithful` or `folded`.
pub const METADATA_FORM: &str = "petal.form";

/// Which of the two graph forms a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnnxForm {
    /// BatchNormalization nodes kept, with their running statistics.
    Faithful,
    /// BatchNorm folded into the convolutions (Conv, Relu and Sub only).
    Folded,
}

impl OnnxForm {
    pub fn as_str(self) -> &'static str {
        match self {
            OnnxForm::Faithful => "faithful",
            OnnxForm::Folded => "folded",
        }
    }
}

impl std::fmt::Display for OnnxForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can go wrong writing or reading an ONNX DnCNN; each names the node or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("not an ONNX model (protobuf decoding failed): {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the ONNX model has no graph")]
    NoGraph,
    #[error("invalid DnCNN config: {0}")]
    Config(#[from] ConfigError),
    #[error("weights do not fit the DnCNN config: {0}")]
    Weights(#[from] WeightsError),
    #[error(
        "the graph has {found} inputs besides its initializers ({names}); petal's DnCNN takes exactly one, the slice window"
    )]
    Inputs { found: usize, names: String },
    #[error("the graph has {found} outputs ({names}); petal's DnCNN has exactly one, the denoised window")]
    Outputs { found: usize, names: String },
    #[error("graph input {name}: {reason}")]
    InputType { name: String, reason: String },
    #[error(
        "node {node}: operator {op_type} (domain '{domain}') is not part of petal's DnCNN, which uses only Conv, BatchNormalization, Relu and Sub"
    )]
    UnsupportedNode { node: String, op_type: String, domain: String },
    #[error("node {node}: {reason}")]
    Chain { node: String, reason: String },
    #[error("node {node}: {reason}; petal's DnCNN uses 3×3 kernels with padding 1, stride 1, dilation 1 and group 1")]
    ConvGeometry { node: String, reason: String },
    #[error("node {node}: attribute {attribute}: {reason}")]
    Attribute { node: String, attribute: String, reason: String },
    #[error("node {node} reads tensor '{tensor}', which is neither an initializer nor a Constant node's output")]
    MissingTensor { node: String, tensor: String },
    #[error("tensor '{tensor}' is {data_type}; petal reads float32 weights")]
    TensorType { tensor: String, data_type: String },
    #[error("tensor '{tensor}': {reason}")]
    BadTensor { tensor: String, reason: String },
    #[error("node {node}: tensor '{tensor}' has shape {found:?}, expected {expected:?}")]
    TensorShape { node: String, tensor: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("the graph is not petal's DnCNN: {0}")]
    Architecture(String),
}
