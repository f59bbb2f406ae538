//! The limits a round's new version must respect, what the gate's checks call a hot spot,
//! and the comparisons they share (NaN never passes, so a measure that cannot be taken
//! fails its check).

/// Hot spots: voxels above this multiple of the body's mean, on the halves and on the
/// series as used alike.
pub const HOT_FACTOR: f64 = 3.0;
/// A hot spot of the input is a group above [`HOT_FACTOR`] whose SUVpeak is at least this
/// multiple of the body's mean (a single noisy voxel is not a hot spot); rounds draw patches
/// around the same hot spots (`science::training::hot_spots`).
pub const INPUT_PEAK_FACTOR: f64 = 2.0;
/// At most this many hot spots (the hottest) are compared.
pub(super) const MAX_HOT_SPOTS: usize = 10;

/// Limits a new version must respect; an admin may set them per deployment. A verdict
/// stored before a limit existed reads it as its default.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GateLimits {
    /// When set, the new validation loss may be at most this multiple of the parent's. Unset
    /// by default: the error estimate below is the same N2N loss difference, restricted to
    /// the body and with an interval, and the plain ratio (air included, no interval)
    /// vetoed rounds the truth calls better (docs/learning.md, "Why rounds made the network worse").
    pub max_validation_loss_ratio: Option<f64>,
    /// Largest change of mean SUV over the body, percent.
    pub body_mean_percent: f64,
    /// Largest change of mean SUV over the large uniform regions, percent.
    pub uniform_mean_percent: f64,
    /// How far (percent of the parent's) a hot spot's SUVmax may leave the range between
    /// the parent's output and the input: moving toward the input (recovering contrast the
    /// parent smoothed away) is never held against a round.
    pub hot_spot_max_percent: f64,
    /// The upper end of the interval of the estimated error change must be below this
    /// (percent; 0 asks for an improvement the data are sure of).
    pub max_error_change_percent: f64,
    /// Confidence of that interval (two-sided; 0.9 puts 5 % above its upper end).
    pub confidence: f64,
    /// On the series as used: how much further (percentage points) from the input's a hot
    /// spot's SUVpeak may move than the parent moved it.
    pub hot_spot_peak_points: f64,
    /// On the series as used: the noise left in uniform regions, as a share of the input's
    /// (percent), above which the new output may not rise higher than the parent's: a round
    /// may trade some smoothing for accuracy, not stop denoising.
    pub noise_share_percent: f64,
}

impl Default for GateLimits {
    fn default() -> Self {
        Self {
            max_validation_loss_ratio: None,
            body_mean_percent: 2.0,
            uniform_mean_percent: 3.0,
            hot_spot_max_percent: 10.0,
            max_error_change_percent: 0.0,
            confidence: 0.9,
            hot_spot_peak_points: 5.0,
            noise_share_percent: 50.0,
        }
    }
}

/// |change| ≤ limit; false for NaN, so a measure that cannot be taken never passes.
pub(super) fn within(change: f64, limit: f64) -> bool {
    change.abs() <= limit
}

/// (new / reference − 1) × 100; infinite for a new value where the reference is zero.
pub fn change_percent(new: f64, parent: f64) -> f64 {
    if parent.abs() < f64::EPSILON {
        if new.abs() < f64::EPSILON { 0.0 } else { f64::INFINITY }
    } else {
        (new / parent - 1.0) * 100.0
    }
}

/// value ≤ ceiling; false for NaN, so a measure that cannot be taken never passes.
pub(super) fn at_most(value: f64, ceiling: f64) -> bool {
    value <= ceiling
}

/// How far `new` lies outside the range between `parent` and `input`, in percent of
/// `parent` (signed: positive above the range); zero inside it.
///
/// ```
/// use petal::science::training::gate::limits::beyond_range_percent;
/// // The parent smoothed a lesion from 10 to 6; the new output's 8 recovers contrast.
/// assert_eq!(beyond_range_percent(8.0, 6.0, 10.0), 0.0);
/// // 12 overshoots the input by 2, a third of the parent's 6.
/// assert!((beyond_range_percent(12.0, 6.0, 10.0) - 100.0 / 3.0).abs() < 1e-9);
/// // 4.5 smooths further than the parent by a quarter.
/// assert!((beyond_range_percent(4.5, 6.0, 10.0) + 25.0).abs() < 1e-9);
/// ```
pub fn beyond_range_percent(new: f64, parent: f64, input: f64) -> f64 {
    if new.is_nan() || parent.is_nan() || input.is_nan() {
        return f64::NAN;
    }
    let (low, high) = (parent.min(input), parent.max(input));
    if new > high {
        change_percent(parent + (new - high), parent)
    } else if new < low {
        change_percent(parent - (low - new), parent)
    } else {
        0.0
    }
}

/// Whether an output's drift from the input (percent) breaks `limit`: only when it is beyond
/// the limit and larger than the parent's own drift, so a round is never held to account
/// for a bias it inherited, nor for correcting one.
pub(super) fn drifted(new: f64, parent: f64, limit: f64) -> bool {
    !(new.abs() <= limit || new.abs() <= parent.abs())
}
