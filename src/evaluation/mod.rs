//! Image quality measures used to judge a network against ground truth: PSNR and SSIM for
//! training reports, and (with the paper's evaluation) lesion bias and liver CoV.

pub mod image_metrics;
