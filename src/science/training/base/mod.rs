//! Training the base network (the paper's v1-net) from low-count/high-count pairs: simulated
//! v1 reconstructions at several count levels against the noiseless reconstruction, or
//! pairs of real series. Runs in resumable steps with periodic checkpoints, and ends with a
//! report on a held-out study (PSNR, SSIM, mean activity in liver and lesions).

pub mod batch_norm;
pub mod checkpoint;
pub mod data;
pub mod loss_plot;
pub mod patches;
pub mod report;
pub mod reserve;
pub mod run;

pub use data::{TrainingPair, TrainingRegions};
pub use run::{BaseTrainingSettings, TrainingOutcome, train_base};
