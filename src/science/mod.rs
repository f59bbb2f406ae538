//! The science of petal, as pure computation on arrays and volumes: it knows nothing of
//! DICOM files, the database, HTTP, the job queue or the inference runtime (the
//! architecture test, tests/architecture.rs, holds it to that). docs/science.md states the
//! methods; docs/architecture.md the layers.
//!
//! From the bottom up:
//! - [`image`]: the voxel grid and a volume on it; [`window`]: whole volumes as 3-slice
//!   windows and back; [`metrics`]: PSNR and SSIM; [`regions`]: hot spots and SUVpeak;
//!   [`canvas`]: plots for reports.
//! - [`model`]: the paper's 2.5D DnCNN, its weights and files, KSE, TGD masks, ONNX graphs.
//! - [`simulation`]: the PET simulator (phantom, projection, counts, OSEM).
//! - [`training`]: base-model training, Noise2Noise rounds under TGD, the gate's measures.
//! - [`evaluation`]: the paper's metrics and its reproduction.

pub mod canvas;
pub mod evaluation;
pub mod image;
pub mod metrics;
pub mod model;
pub mod regions;
pub mod simulation;
pub mod training;
pub mod window;
