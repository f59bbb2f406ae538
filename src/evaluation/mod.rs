//! Image quality measures used to judge a network against ground truth: PSNR and SSIM for
//! training reports, and the paper's lesion bias and liver CoV.

pub mod canvas;
pub mod image_metrics;
pub mod paper;
pub mod paper_metrics;
