//! The science of petal's model, independent of HTTP, the database and DICOM: the paper's
//! 2.5D DnCNN (config, burn module, plain named weights and their files), kernel sparsity
//! and entropy (KSE) scores, the Targeted Gradient Descent masks derived from them, and the
//! ONNX graphs the inference engine runs.

pub mod backend;
pub mod burn_denoise;
pub mod config;
pub mod directory;
pub mod kse;
pub mod network;
pub mod onnx;
pub mod pseudo_random;
pub mod tgd_gates;
pub mod tgd_mask;
pub mod weights;
