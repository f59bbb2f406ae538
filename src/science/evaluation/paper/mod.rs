//! The paper's experiment (docs/science.md §6), reproduced at a scale this machine runs:
//! v1-net (the shipped model), v2-net (its recipe on v2), FT-net, TGD-net and the online
//! TGD_N2N-net and TGD²_N2N-net, scored by lesion bias (against the same version's
//! reconstruction of noiseless data) and liver CoV over R low-count realizations of one
//! test scan, on v2 and on v1 data, with paired bootstrap comparisons, the comparison with a
//! Gaussian filter at matched noise, and the KSE threshold sweep. `petal eval paper`
//! (src/app/cli) trains the networks and calls these parts; they know nothing of the
//! command line.

pub mod bootstrap;
pub mod figures;
pub mod kse_sweep;
pub mod matched_noise;
pub mod report;
pub mod scale;
pub mod scores;
pub mod test_scan;

use bootstrap::Comparison;
use scale::PaperScale;
use scores::Scores;

/// The networks, in the order of the paper's table (the online rounds last).
pub const NETWORKS: [&str; 6] = ["v1-net", "v2-net", "FT-net", "TGD-net", "TGD_N2N-net", "TGD²_N2N-net"];
/// The reconstruction alone, as a reference row.
pub const OSEM_ALONE: &str = "OSEM alone";

/// The paper's Table 1: (network, lesion bias %, liver CoV %).
pub const PAPER_TABLE: [(&str, f64, f64); 4] =
    [("v1-net", -6.30, 6.02), ("v2-net", -4.07, 8.56), ("FT-net", -4.71, 7.87), ("TGD-net", -3.77, 6.46)];

/// How one network was made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NetworkRecord {
    pub name: String,
    pub made_by: String,
    /// Training time (s); 0 when none is on record (the shipped model, or a cached network without it).
    pub seconds: f64,
    /// Share of all parameters its training could change.
    pub fraction_retrained: f64,
}

/// One φ of the KSE sweep on v1-net.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepRow {
    pub phi: f64,
    pub percent_flagged: f64,
    pub paper_percent_flagged: Option<f64>,
    /// (layer, output channels flagged, output channels).
    pub layers: Vec<(String, usize, usize)>,
    /// v1-net with the flagged kernels dropped, on v1 test data.
    pub dropped: Scores,
}

/// Everything the report is written from (also saved as results.json).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PaperResults {
    pub command: String,
    pub date: String,
    pub machine: String,
    pub scale: PaperScale,
    pub test_seed: u64,
    pub lesions: Vec<crate::science::simulation::phantom::Lesion>,
    pub lesion_voxels: Vec<usize>,
    pub networks: Vec<NetworkRecord>,
    pub scores: Vec<Scores>,
    pub comparisons: Vec<Comparison>,
    /// OSEM smoothed to each network's liver CoV, on each data version.
    pub matched: Vec<matched_noise::MatchedFilter>,
    pub sweep: Vec<SweepRow>,
    /// (stage, seconds) of this invocation.
    pub stages: Vec<(String, f64)>,
}

impl PaperResults {
    pub fn scores_of(&self, network: &str, data: crate::science::simulation::ReconVersion) -> Option<&Scores> {
        self.scores.iter().find(|s| s.network == network && s.data == data)
    }

    pub fn matched_filter_of(
        &self,
        network: &str,
        data: crate::science::simulation::ReconVersion,
    ) -> Option<&matched_noise::MatchedFilter> {
        self.matched.iter().find(|m| m.network == network && m.data == data)
    }

    pub fn comparison(
        &self,
        first: &str,
        second: &str,
        data: crate::science::simulation::ReconVersion,
    ) -> Option<&Comparison> {
        self.comparisons.iter().find(|c| c.first == first && c.second == second && c.data == data)
    }
}

/// The comparisons the discussion needs: TGD-net against each peer on v2 data, each
/// network against v1-net on v1 data (what it kept), and each online round against the
/// network it started from.
pub fn planned_comparisons() -> Vec<(&'static str, &'static str, crate::science::simulation::ReconVersion)> {
    use crate::science::simulation::ReconVersion::{V1, V2};
    vec![
        ("TGD-net", "FT-net", V2),
        ("TGD-net", "v2-net", V2),
        ("TGD-net", "v1-net", V2),
        ("FT-net", "v2-net", V2),
        ("TGD_N2N-net", "v2-net", V2),
        ("TGD²_N2N-net", "TGD-net", V2),
        ("TGD-net", "v1-net", V1),
        ("FT-net", "v1-net", V1),
        ("v2-net", "v1-net", V1),
    ]
}
