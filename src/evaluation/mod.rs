//! Image quality measures used to judge a network against ground truth: PSNR and SSIM for
//! training reports, and the paper's lesion bias and liver CoV.

pub mod image_metrics;
pub mod paper_metrics;
