//! What a round is asked to do: which parameters it may change ([`RoundKind`]) and its
//! settings, each with a default a physicist can start from.

pub use super::trainer::BatchStatistics;
use super::{DEFAULT_BATCH, DEFAULT_PATCH};

/// What a round may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundKind {
    /// The paper's TGD layers (the default).
    Tgd,
    /// TGD's masks applied to the parameter gradients only.
    TgdParameterMask,
    /// The paper's FT-net: the last three convolutions, all channels.
    FineTuneLastLayers,
}

impl RoundKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tgd => "tgd",
            Self::TgdParameterMask => "tgd_parameter_mask",
            Self::FineTuneLastLayers => "fine_tune_last_layers",
        }
    }
}

/// What a round's anchor holds its output's block means to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorReference {
    /// The series itself: denoising conserves activity, so a block's mean is the input's,
    /// up to the input's noise over the block.
    Input,
    /// The parent's output on the series: the round keeps what the parent put in each block.
    Parent,
}

/// Settings of a round; every field has a default a physicist can start from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoundSettings {
    pub kind: RoundKind,
    /// KSE threshold: input channels below it are meaningless (the paper: 0.3).
    pub phi: f64,
    /// Optimisation steps in each TGD pass.
    pub steps_per_pass: usize,
    /// TGD^n: KSE is recomputed before each pass.
    pub tgd_passes: usize,
    pub learning_rate: f64,
    /// What BatchNorm normalises with during the steps: each batch's own statistics, or the
    /// parent's running statistics as inference uses them (`frozen`).
    pub batch_statistics: BatchStatistics,
    /// After the steps, the running statistics of retrained BatchNorm channels become the
    /// mean of this many batches' statistics (0 keeps the steps' exponential average). Not
    /// used with frozen statistics, which the steps never change.
    pub batch_norm_batches: usize,
    pub batch: usize,
    pub patch: usize,
    /// Share of the patches drawn around the hot spots found in the halves
    /// (`science::training::hot_spots`); the rest are drawn uniformly.
    pub hot_spot_share: f64,
    /// Coefficient of the anchor term (0 leaves it out): each step also denoises patches of
    /// the series that gets denoised (the patient's full-count series where the round has
    /// it, else half A) and pays the squared difference between its output's block means and
    /// the reference's. Trained on half-count inputs alone, rounds moved the full-count
    /// series' mean (docs/learning.md).
    pub anchor_weight: f64,
    /// Side of the anchor's square blocks, in pixels.
    pub anchor_block: usize,
    /// What the anchor holds the block means to.
    pub anchor_reference: AnchorReference,
    /// Share of the slices held out for validation and the gate: one in every
    /// round(1 / fraction), spread through the volume.
    pub validation_fraction: f64,
    /// Seeds the patch draws.
    pub seed: u64,
}

impl Default for RoundSettings {
    fn default() -> Self {
        Self {
            kind: RoundKind::Tgd,
            phi: 0.3,
            steps_per_pass: 200,
            tgd_passes: 1,
            learning_rate: 5e-4,
            batch_statistics: BatchStatistics::Frozen,
            batch_norm_batches: 50,
            batch: DEFAULT_BATCH,
            patch: DEFAULT_PATCH,
            hot_spot_share: 0.0,
            anchor_weight: 0.0,
            anchor_block: 4,
            anchor_reference: AnchorReference::Input,
            validation_fraction: 0.25,
            seed: 1,
        }
    }
}

impl RoundSettings {
    /// Checks the settings; the message says what to change.
    pub fn validate(&self) -> Result<(), InvalidRoundSettings> {
        let fine = (0.0..=1.0).contains(&self.phi)
            && self.steps_per_pass > 0
            && (1..=5).contains(&self.tgd_passes)
            && self.learning_rate > 0.0
            && self.learning_rate < 1.0
            && self.batch > 0
            && self.patch >= 8
            && (0.0..=1.0).contains(&self.hot_spot_share)
            && self.anchor_weight >= 0.0
            && self.anchor_weight.is_finite()
            && (1..=self.patch).contains(&self.anchor_block)
            && self.validation_fraction > 0.0
            && self.validation_fraction < 0.9;
        if fine { Ok(()) } else { Err(InvalidRoundSettings) }
    }

    pub fn total_steps(&self) -> usize {
        let passes = if self.kind == RoundKind::FineTuneLastLayers { 1 } else { self.tgd_passes };
        self.steps_per_pass * passes
    }
}

/// Settings outside their ranges; the message says what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "round settings: phi in [0, 1], steps_per_pass > 0, tgd_passes 1 to 5, 0 < learning_rate < 1, batch > 0, \
     patch ≥ 8, hot_spot_share in [0, 1], anchor_weight ≥ 0, anchor_block 1 to patch, validation_fraction in (0, 0.9)"
)]
pub struct InvalidRoundSettings;
