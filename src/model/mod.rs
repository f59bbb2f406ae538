//! The science of petal's model, independent of HTTP, the database and DICOM: kernel
//! sparsity and entropy (KSE) scores and the Targeted Gradient Descent masks derived from
//! them. The network itself (burn), training and ONNX export join this module next.

pub mod kse;
pub mod tgd_mask;
pub mod weights;
