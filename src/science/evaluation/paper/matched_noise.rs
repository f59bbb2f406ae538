//! The comparisons at matched noise: a denoiser can always trade lesion contrast for a
//! quieter liver, so a network is judged beside OSEM smoothed by a Gaussian until its liver
//! CoV equals the network's. A network whose lesions keep more than that filter's has
//! learned something a filter cannot do.

use rayon::prelude::*;

use super::scores::Scores;
use super::test_scan::{TestScan, VersionData};
use crate::science::evaluation::paper_metrics::liver_cov_percent;
use crate::science::simulation::filter::post_filter;
use crate::science::simulation::{Image3, ReconVersion};

/// Widest Gaussian the search tries, in pixels (FWHM).
const WIDEST_FILTER_PIXELS: f64 = 8.0;

/// OSEM alone, smoothed to one network's liver CoV.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatchedFilter {
    /// The network whose noise it matches.
    pub network: String,
    pub data: ReconVersion,
    /// The Gaussian's FWHM (mm): 0 when OSEM alone is already as quiet as the network.
    pub fwhm_mm: f64,
    /// Even the widest Gaussian tried (8 pixels FWHM) leaves OSEM noisier than the network;
    /// `scores` are then that filter's.
    pub network_quieter_than_every_filter: bool,
    /// The filtered OSEM images, scored like a network.
    pub scores: Scores,
}

/// The Gaussian-filtered OSEM of `version` whose liver CoV is `network`'s.
pub fn matched_filter(version: &VersionData, test: &TestScan, network: &Scores) -> anyhow::Result<MatchedFilter> {
    let continues = version.version.settings().object_continues_axially;
    let filtered = |fwhm: f64| -> Vec<Image3> {
        version
            .realizations
            .par_iter()
            .map(|image| {
                let mut copy = image.clone();
                post_filter(&mut copy, fwhm, continues);
                copy
            })
            .collect()
    };
    let cov = |images: &[Image3]| {
        let slices: Vec<&[f32]> = images.iter().map(|i| i.data.as_slice()).collect();
        liver_cov_percent(&slices, &test.liver).unwrap_or(f64::NAN)
    };
    let widest = WIDEST_FILTER_PIXELS * version.reference.grid.pixel_mm;
    // OSEM alone as quiet as the network needs no filter; only otherwise is the widest tried.
    let already_quiet = cov(&version.realizations) <= network.liver_cov;
    let network_quieter_than_every_filter = !already_quiet && cov(&filtered(widest)) > network.liver_cov;
    let fwhm_mm = if already_quiet {
        0.0
    } else if network_quieter_than_every_filter {
        widest
    } else {
        // Bisection: the CoV falls as the filter widens.
        let (mut low, mut high) = (0.0, widest);
        for _ in 0..14 {
            let middle = 0.5 * (low + high);
            if cov(&filtered(middle)) > network.liver_cov {
                low = middle;
            } else {
                high = middle;
            }
        }
        0.5 * (low + high)
    };
    let name = format!("OSEM + {fwhm_mm:.1} mm Gaussian");
    let scores = Scores::measure(&name, version, &filtered(fwhm_mm), test)?;
    Ok(MatchedFilter {
        network: network.network.clone(),
        data: version.version,
        fwhm_mm,
        network_quieter_than_every_filter,
        scores,
    })
}
