//! Assembling a PET series into a volume: slices sorted along the slice normal, geometry
//! checked (one orientation, one size, no duplicate positions, no missing slices), pixel
//! values in physical units (per-slice RescaleSlope and Intercept applied), and the
//! intensity normalisation the network works in: SUVbw when the header allows it, else a
//! scale that puts the body's median where SUV series have it. The normalisation is recorded so that its exact inverse can
//! be applied to the network's output.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::pixels::Frames;
use super::suv::suv_bw_factor;

/// Largest relative deviation of a slice gap from the median gap before slices count as missing.
const SPACING_TOLERANCE: f64 = 0.01;
/// Positions closer than this (mm) along the normal are the same position.
const SAME_POSITION_MM: f64 = 1e-3;
/// Direction cosines differing by more than this are different orientations.
const ORIENTATION_TOLERANCE: f64 = 1e-4;

/// One decoded slice with its geometry.
#[derive(Debug, Clone)]
pub struct Slice {
    pub sop_instance_uid: String,
    pub position: [f64; 3],
    /// Row then column direction cosines.
    pub orientation: [f64; 6],
    /// Row spacing, column spacing (mm).
    pub pixel_spacing: [f64; 2],
    pub rows: u32,
    pub columns: u32,
    /// Physical values (e.g. Bq/ml), row-major.
    pub values: Vec<f32>,
    /// Bq/ml → SUVbw from this slice's header, when computable.
    pub suv_factor: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VolumeError {
    #[error("the series has no slices")]
    Empty,
    #[error("slice {0} cannot be read: {1}")]
    Unreadable(String, String),
    #[error("slice {0} lacks {1}, so it cannot be placed in a volume")]
    MissingGeometry(String, &'static str),
    #[error("the slices do not share one orientation")]
    MixedOrientation,
    #[error("the slices do not share one size")]
    MixedSize,
    #[error("two slices share the position {0:.3} mm along the slice normal")]
    DuplicatePosition(f64),
    #[error("slices are missing: a gap of {found:.3} mm where the series steps {expected:.3} mm")]
    MissingSlices { expected: f64, found: f64 },
    #[error("multi-frame instances are not assembled into volumes")]
    MultiFrame,
}

/// How intensities were normalised for the network.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalisation {
    /// normalised = value × factor (SUVbw).
    SuvBw { factor: f64 },
    /// normalised = value / scale, with scale the median of the body's voxels over the SUV
    /// that median reads in SUV series (for series whose header lacks weight or dose).
    Robust { scale: f64 },
}

impl Normalisation {
    pub fn forward(&self, value: f32) -> f32 {
        match *self {
            Normalisation::SuvBw { factor } => (f64::from(value) * factor) as f32,
            Normalisation::Robust { scale } => (f64::from(value) / scale) as f32,
        }
    }

    pub fn inverse(&self, value: f32) -> f32 {
        match *self {
            Normalisation::SuvBw { factor } => (f64::from(value) / factor) as f32,
            Normalisation::Robust { scale } => (f64::from(value) * scale) as f32,
        }
    }
}

/// A volume of slices sorted along the slice normal.
#[derive(Debug, Clone)]
pub struct Volume {
    /// In order along the normal (the source slices keep their own headers).
    pub slices: Vec<Slice>,
    /// Distance between consecutive slices (mm); 0 for a single slice.
    pub slice_spacing: f64,
    pub normalisation: Normalisation,
}

impl Slice {
    /// Decodes a stored single-frame instance.
    pub fn from_part10(bytes: &[u8]) -> Result<Self, VolumeError> {
        Self::with_dataset(bytes).map(|(slice, _)| slice)
    }

    /// Decodes a stored single-frame instance and also returns its data set, for callers
    /// that go on to read or copy the header (parsing the file once).
    pub fn with_dataset(bytes: &[u8]) -> Result<(Self, InMemDicomObject), VolumeError> {
        let (frames, object) =
            Frames::decode(bytes).map_err(|e| VolumeError::Unreadable(String::new(), e.to_string()))?;
        let object = object.into_inner();
        let text = |tag| super::header::text(&object, tag);
        let uid = text(tags::SOP_INSTANCE_UID).unwrap_or_default();
        if frames.count != 1 {
            return Err(VolumeError::MultiFrame);
        }
        let numbers = |tag, name| -> Result<Vec<f64>, VolumeError> {
            let value = text(tag).ok_or_else(|| VolumeError::MissingGeometry(uid.clone(), name))?;
            value
                .split('\\')
                .map(|v| v.trim().parse::<f64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| VolumeError::MissingGeometry(uid.clone(), name))
        };
        let position = numbers(tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient")?;
        let orientation = numbers(tags::IMAGE_ORIENTATION_PATIENT, "ImageOrientationPatient")?;
        let spacing = numbers(tags::PIXEL_SPACING, "PixelSpacing")?;
        let (Ok(position), Ok(orientation), Ok(pixel_spacing)) =
            (<[f64; 3]>::try_from(position), <[f64; 6]>::try_from(orientation), <[f64; 2]>::try_from(spacing))
        else {
            return Err(VolumeError::MissingGeometry(
                uid,
                "a well-formed geometry (3 positions, 6 cosines, 2 spacings)",
            ));
        };
        let values = frames
            .frame_values(1)
            .ok_or_else(|| VolumeError::Unreadable(uid.clone(), "no frame".into()))?
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let slice = Slice {
            sop_instance_uid: uid,
            position,
            orientation,
            pixel_spacing,
            rows: frames.rows,
            columns: frames.columns,
            values,
            suv_factor: suv_bw_factor(&object),
        };
        Ok((slice, object))
    }

    fn normal(&self) -> [f64; 3] {
        let [rx, ry, rz, cx, cy, cz] = self.orientation;
        [ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx]
    }

    fn along_normal(&self, normal: &[f64; 3]) -> f64 {
        self.position.iter().zip(normal).map(|(p, n)| p * n).sum()
    }
}

/// Sorts and checks slices and chooses the normalisation.
pub fn assemble(mut slices: Vec<Slice>) -> Result<Volume, VolumeError> {
    let first = slices.first().ok_or(VolumeError::Empty)?.clone();
    for slice in &slices {
        if slice.orientation.iter().zip(&first.orientation).any(|(a, b)| (a - b).abs() > ORIENTATION_TOLERANCE) {
            return Err(VolumeError::MixedOrientation);
        }
        if (slice.rows, slice.columns) != (first.rows, first.columns) {
            return Err(VolumeError::MixedSize);
        }
    }
    let normal = first.normal();
    slices.sort_by(|a, b| a.along_normal(&normal).total_cmp(&b.along_normal(&normal)));
    let positions: Vec<f64> = slices.iter().map(|s| s.along_normal(&normal)).collect();
    let gaps: Vec<f64> = positions.windows(2).map(|w| w[1] - w[0]).collect();
    if let Some(at) = gaps.iter().position(|g| *g < SAME_POSITION_MM) {
        return Err(VolumeError::DuplicatePosition(positions[at]));
    }
    let slice_spacing = median(&gaps).unwrap_or(0.0);
    if let Some(gap) = gaps.iter().find(|g| ((*g - slice_spacing) / slice_spacing).abs() > SPACING_TOLERANCE) {
        return Err(VolumeError::MissingSlices { expected: slice_spacing, found: *gap });
    }
    let normalisation = match first.suv_factor {
        Some(factor) if slices.iter().all(|s| s.suv_factor.is_some_and(|f| (f - factor).abs() <= 1e-9 * factor)) => {
            Normalisation::SuvBw { factor }
        }
        _ => Normalisation::Robust { scale: robust_scale(&slices) },
    };
    Ok(Volume { slices, slice_spacing, normalisation })
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// SUVbw that the median of a whole-body FDG series' body voxels reads. Soft tissue (SUV
/// 0.9–1.1) is most of the body, so the median sits there whichever organs are in view;
/// this is the level the network was trained at.
pub const BODY_MEDIAN_SUV: f64 = 1.0;
/// Where the search for the body starts: voxels above this share of the whole volume's mean.
const START_SHARE_OF_VOLUME_MEAN: f64 = 0.5;
/// The body is every voxel above this share of its own median: lungs (a third of soft
/// tissue) stay in, while the air around the patient and the low tails of scatter, which
/// real series carry far from the body, stay out.
const BODY_SHARE_OF_MEDIAN: f64 = 0.25;
/// Rounds of the search; it settles in two or three.
const BODY_SEARCH_ROUNDS: usize = 10;

/// The scale that brings a series without SUV information to the network's range: the
/// median of its body voxels divided by [`BODY_MEDIAN_SUV`] (1 when nothing is positive).
///
/// The body is found by a fixed point: start above half the volume's mean, then keep every
/// voxel above a quarter of the current body's median until that median settles. The
/// volume's mean alone is no threshold: a slice where the patient fills a tenth of the
/// field of view, with low scatter tails around, puts it far below soft tissue. A high
/// percentile (petal's earlier choice) follows the hottest organ, the bladder or the heart,
/// and fed the network inputs 4–10× dimmer than SUV.
fn robust_scale(slices: &[Slice]) -> f64 {
    let values: Vec<f32> = slices.iter().flat_map(|s| s.values.iter().copied()).collect();
    let total: f64 = values.iter().map(|v| f64::from(v.max(0.0))).sum();
    if values.is_empty() || total <= 0.0 {
        return 1.0;
    }
    let mut threshold = START_SHARE_OF_VOLUME_MEAN * total / values.len() as f64;
    let mut median = None;
    for _ in 0..BODY_SEARCH_ROUNDS {
        let Some(next) = median_above(&values, threshold) else { break };
        let settled = median.is_some_and(|m: f64| (next - m).abs() <= 1e-3 * m);
        median = Some(next);
        if settled {
            break;
        }
        threshold = BODY_SHARE_OF_MEDIAN * next;
    }
    median.map_or(1.0, |m| (m / BODY_MEDIAN_SUV).max(f64::MIN_POSITIVE))
}

/// The median of the values above `threshold`, if any are.
fn median_above(values: &[f32], threshold: f64) -> Option<f64> {
    let mut above: Vec<f32> = values.iter().copied().filter(|v| f64::from(*v) > threshold).collect();
    if above.is_empty() {
        return None;
    }
    let at = above.len() / 2;
    let (_, median, _) = above.select_nth_unstable_by(at, f32::total_cmp);
    Some(f64::from(*median))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(z: f64, uid: &str) -> Slice {
        Slice {
            sop_instance_uid: uid.to_owned(),
            position: [-100.0, -100.0, z],
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            pixel_spacing: [4.0, 4.0],
            rows: 2,
            columns: 2,
            values: vec![0.0, 1.0, 2.0, 1000.0],
            suv_factor: Some(0.001),
        }
    }

    #[test]
    fn slices_are_sorted_along_the_normal() {
        let volume = assemble(vec![slice(6.0, "c"), slice(0.0, "a"), slice(3.0, "b")]).expect("volume");
        let order: Vec<&str> = volume.slices.iter().map(|s| s.sop_instance_uid.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert!((volume.slice_spacing - 3.0).abs() < 1e-12);
        assert_eq!(volume.normalisation, Normalisation::SuvBw { factor: 0.001 });
    }

    #[test]
    fn broken_geometry_is_refused_with_a_reason() {
        assert_eq!(assemble(vec![]).err(), Some(VolumeError::Empty));
        assert!(matches!(assemble(vec![slice(0.0, "a"), slice(0.0, "b")]), Err(VolumeError::DuplicatePosition(_))));
        let gap = assemble(vec![slice(0.0, "a"), slice(3.0, "b"), slice(9.0, "c"), slice(12.0, "d")]);
        assert!(matches!(gap, Err(VolumeError::MissingSlices { .. })), "{gap:?}");
        let mut tilted = slice(3.0, "b");
        tilted.orientation = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0];
        assert_eq!(assemble(vec![slice(0.0, "a"), tilted]).err(), Some(VolumeError::MixedOrientation));
    }

    #[test]
    fn without_suv_the_bodys_median_is_brought_to_soft_tissue_level() {
        // A body of 1000 voxels at 5000 Bq/ml with a hot organ and cold lungs, in air.
        let mut values = vec![0.0f32; 2000];
        values[..700].fill(5000.0);
        values[700..800].fill(60_000.0);
        values[800..1000].fill(1800.0);
        values[1000..1010].fill(40.0);
        let mut only = slice(0.0, "a");
        only.suv_factor = None;
        only.rows = 40;
        only.columns = 50;
        only.values = values;
        let volume = assemble(vec![only]).expect("volume");
        let Normalisation::Robust { scale } = volume.normalisation else { panic!("robust expected") };
        assert!((volume.normalisation.forward(5000.0) - BODY_MEDIAN_SUV as f32).abs() < 1e-6, "scale {scale}");
    }

    #[test]
    fn without_suv_a_robust_scale_is_used_and_inverts_exactly() {
        let mut a = slice(0.0, "a");
        a.suv_factor = None;
        let volume = assemble(vec![a]).expect("volume");
        let Normalisation::Robust { scale } = volume.normalisation else { panic!("robust expected") };
        assert!(scale > 0.0);
        let n = volume.normalisation;
        for v in [0.0f32, 1.5, 1000.0] {
            assert!((n.inverse(n.forward(v)) - v).abs() <= v.abs() * 1e-6);
        }
    }
}
