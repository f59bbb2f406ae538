//! Judging networks against the ground truth: the paper's lesion bias and liver CoV, and
//! the reproduction of its Table 1 and KSE sweep. PSNR and SSIM live in
//! [`crate::science::metrics`], below training, which reports them too.

pub mod paper;
pub mod paper_metrics;
pub mod rounds;
