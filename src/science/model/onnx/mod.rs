//! ONNX form of petal's 2.5D DnCNN (docs/science.md §1, docs/interoperability.md §6): graphs generated from the plain
//! named weights for ONNX Runtime, and DnCNN graphs trained elsewhere read back into them.
//!
//! Both forms have one input [`INPUT_NAME`] and one output [`OUTPUT_NAME`], float32
//! `[batch, slices, height, width]` with batch, height and width dynamic, and compute
//! `output = input − conv8(…)`:
//! - faithful ([`export_faithful`]): Conv → BatchNormalization → Relu with every parameter
//!   and running statistic as a float32 initializer under petal's tensor names
//!   (`conv3.weight`, `bn3.running_var`…); importing it gives the weights back bit for bit.
//! - folded ([`export_folded`]): each BatchNorm folded into the convolution before it, so
//!   only Conv, Relu and Sub remain; this is the graph the inference engine runs.
//!
//! [`import`] walks a graph's structure rather than its names, so DnCNNs exported from
//! PyTorch (BatchNorm kept or folded) are read too.
//!
//! Modules: [`proto`] declares the protobuf messages, `format` the names, versions and
//! errors both directions share, `export` writes graphs, `import` reads them.

mod export;
mod format;
mod import;
pub mod proto;
#[cfg(test)]
mod tests;

pub use export::{export_faithful, export_folded};
pub use format::{
    INPUT_NAME, IR_VERSION, METADATA_CONFIG, METADATA_FORM, OPSET_VERSION, OUTPUT_NAME, OnnxError, OnnxForm,
    PRODUCER_NAME,
};
pub use import::{ImportedModel, import};
