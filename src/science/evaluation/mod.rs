//! Judging networks against the ground truth: the paper's lesion bias and liver CoV, and
//! the reproduction of its Table 1 and KSE sweep, online rounds against the truth, and the
//! NEMA IEC body phantom. PSNR and SSIM live in
//! [`crate::science::metrics`], below training, which reports them too.

pub mod nema;
pub mod paper;
pub mod paper_metrics;
pub mod rounds;
