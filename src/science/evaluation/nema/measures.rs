//! What a physicist reads off a NEMA IEC body phantom image (NEMA NU 2, section 7):
//!
//! - **contrast recovery** of each sphere: `CRC = (C_sphere / C_background − 1) / (contrast − 1)`,
//!   with `C_sphere` the mean of a circular ROI of the sphere's inner diameter on the slice
//!   through the spheres' centres, and `C_background` the mean of the background ROIs;
//! - **RC_max**: the sphere's hottest voxel over its true activity; **RC_A50**: the mean of
//!   the voxels around the sphere at or above half-way from the background to that maximum,
//!   over the true activity; **SUVpeak**: the highest mean of a 1 mL sphere centred in it;
//! - **false hot spots**: groups of two or more touching voxels of the uniform background
//!   (every slice) as bright as the smallest sphere appears in OSEM of noiseless data;
//! - **background variability**: the relative standard deviation of the means of 60 ROIs of
//!   10 mm (12 positions on the spheres' slice and on the slices nearest ±10 and ±20 mm);
//! - **background CoV**: the voxel standard deviation over the mean, in the uniform
//!   background (15 mm or more from every sphere, the lung insert and the wall) of those
//!   five slices;
//! - **lung residual**: the mean of a 30 mm ROI in the lung insert over `C_background`, on
//!   the same five slices (the scatter and noise a cold region collects).
//!
//! ROIs hold the voxels whose centres lie inside their circle.

use crate::science::image::{Grid, Image3};
use crate::science::regions::{connected_groups, peak_mean};
use crate::science::simulation::nema::{
    AXIAL_RANGE_MM, BACKGROUND_MARGIN_MM, CORNER_RADIUS_MM, HALF_WIDTH_MM, LUNG_INSERT_DIAMETER_MM,
    SPHERE_DIAMETERS_MM, inside_with_margin, sphere_plane_mm, spheres,
};
use crate::science::simulation::spheres::Sphere;

/// Diameter of a background ROI (mm).
pub const BACKGROUND_ROI_MM: f64 = 10.0;
/// Background ROI positions per slice.
pub const BACKGROUND_POSITIONS: usize = 12;
/// Offsets of the background slices from the spheres' plane (mm).
pub const BACKGROUND_SLICE_OFFSETS_MM: [f64; 5] = [-20.0, -10.0, 0.0, 10.0, 20.0];
/// Diameter of the lung insert's ROI (mm).
pub const LUNG_ROI_MM: f64 = 30.0;
/// Least distance from a background ROI's edge to the tank's wall (mm).
const WALL_MARGIN_MM: f64 = 15.0;

/// Voxel indices of one circular ROI.
pub type Roi = Vec<usize>;

/// Where every ROI of the phantom lies on a grid.
#[derive(Debug, Clone)]
pub struct PhantomRois {
    /// One ROI per sphere, smallest first, on the spheres' slice.
    pub spheres: Vec<Roi>,
    /// The 3D voxels of each sphere (centres inside it), for SUVmax and SUVpeak.
    pub sphere_volumes: Vec<Roi>,
    /// Each sphere and one pixel around it, where its A50 iso-contour is drawn.
    pub sphere_surroundings: Vec<Roi>,
    /// 60 background ROIs.
    pub background: Vec<Roi>,
    /// Uniform-background voxels of the five background slices.
    pub background_voxels: Roi,
    /// Uniform-background voxels of every slice, where false hot spots are looked for.
    pub searched_background: Roi,
    /// The lung insert's ROI on each of the five slices, together.
    pub lung: Roi,
}

/// One image's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NemaMeasures {
    /// Per sphere, smallest first.
    pub crc: Vec<f64>,
    /// Per sphere: hottest voxel over the true sphere activity.
    pub rc_max: Vec<f64>,
    /// Per sphere: hottest voxel (SUV).
    pub suv_max: Vec<f64>,
    /// Per sphere: the highest mean of a 1 mL sphere centred on one of its voxels (SUV).
    pub suv_peak: Vec<f64>,
    /// Per sphere: the mean of the voxels around it at or above half-way from the background
    /// to its maximum (the background-adapted 50 % iso-contour), over the true activity.
    pub rc_a50: Vec<f64>,
    /// Groups of two or more touching voxels of the uniform background as bright as the
    /// given level (the smallest sphere as OSEM shows it without noise).
    pub false_hot_spots: f64,
    /// Mean of the background ROIs (SUV; the truth is 1).
    pub background_mean: f64,
    /// Percent.
    pub background_variability_percent: f64,
    /// Percent.
    pub background_cov_percent: f64,
    /// Percent of the background.
    pub lung_residual_percent: f64,
}

/// The slice whose centre is nearest `z_mm`.
pub fn slice_nearest(grid: &Grid, z_mm: f64) -> usize {
    let from_first = (z_mm - grid.z_mm(0)) / grid.slice_mm;
    (from_first.round().max(0.0) as usize).min(grid.slices - 1)
}

/// Voxels of slice `z` whose centres lie within `diameter_mm / 2` of (x, y).
fn circle(grid: &Grid, z: usize, centre: [f64; 2], diameter_mm: f64) -> Roi {
    let n = grid.size;
    let r2 = (diameter_mm / 2.0).powi(2);
    (0..n * n)
        .filter(|i| (grid.x_mm(i % n) - centre[0]).powi(2) + (grid.y_mm(i / n) - centre[1]).powi(2) <= r2)
        .map(|i| z * n * n + i)
        .collect()
}

/// Whether a 10 mm ROI at (x, y) lies in the uniform background: inside the tank with room
/// to its wall, off the lung insert, and `BACKGROUND_MARGIN_MM` from every sphere's edge.
fn background_position_allowed(x: f64, y: f64, plane_z_mm: f64) -> bool {
    let inside = inside_with_margin(x, y, BACKGROUND_ROI_MM / 2.0 + WALL_MARGIN_MM);
    let off_lung = x.hypot(y) >= LUNG_INSERT_DIAMETER_MM / 2.0 + BACKGROUND_ROI_MM / 2.0 + BACKGROUND_MARGIN_MM;
    let off_spheres = spheres(plane_z_mm).iter().all(|s| {
        (x - s.centre_mm[0]).hypot(y - s.centre_mm[1]) >= s.radius_mm + BACKGROUND_MARGIN_MM + BACKGROUND_ROI_MM / 2.0
    });
    inside && off_lung && off_spheres
}

/// The 12 in-plane background positions: allowed points on rings around the axis, spread
/// evenly by angle.
pub fn background_positions() -> Vec<[f64; 2]> {
    let mut candidates = Vec::new();
    for radius in [HALF_WIDTH_MM - 40.0, CORNER_RADIUS_MM + 20.0, HALF_WIDTH_MM - 65.0] {
        for step in 0..72 {
            let theta = f64::from(step) * 5f64.to_radians();
            let point = [radius * theta.cos(), radius * theta.sin()];
            if background_position_allowed(point[0], point[1], 0.0) {
                candidates.push((theta, point));
            }
        }
    }
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
    candidates.dedup_by(|a, b| (a.1[0] - b.1[0]).hypot(a.1[1] - b.1[1]) < BACKGROUND_ROI_MM);
    let take = BACKGROUND_POSITIONS.min(candidates.len());
    (0..take).map(|k| candidates[k * candidates.len() / take].1).collect()
}

impl PhantomRois {
    pub fn on(grid: &Grid) -> Self {
        let plane_mm = sphere_plane_mm(grid);
        let centre_slice = slice_nearest(grid, plane_mm);
        let sphere_list = spheres(plane_mm);
        let spheres_2d = sphere_list
            .iter()
            .map(|s| circle(grid, centre_slice, [s.centre_mm[0], s.centre_mm[1]], 2.0 * s.radius_mm))
            .collect();
        let n = grid.size;
        let sphere_volumes = sphere_list.iter().map(|s| s.voxels_within(grid, s.radius_mm)).collect();
        let sphere_surroundings =
            sphere_list.iter().map(|s| s.voxels_within(grid, s.radius_mm + grid.pixel_mm)).collect();
        let slices: Vec<usize> =
            BACKGROUND_SLICE_OFFSETS_MM.iter().map(|offset| slice_nearest(grid, plane_mm + offset)).collect();
        let positions = background_positions();
        let background = slices
            .iter()
            .flat_map(|z| positions.iter().map(move |p| circle(grid, *z, *p, BACKGROUND_ROI_MM)))
            .collect();
        let uniform = |index: &usize| in_uniform_background(grid, *index, &sphere_list);
        let background_voxels =
            slices.iter().flat_map(|z| (0..n * n).map(move |i| z * n * n + i)).filter(uniform).collect();
        let searched_background = (0..grid.voxels()).filter(uniform).collect();
        let lung = slices.iter().flat_map(|z| circle(grid, *z, [0.0, 0.0], LUNG_ROI_MM)).collect();
        Self {
            spheres: spheres_2d,
            sphere_volumes,
            sphere_surroundings,
            background,
            background_voxels,
            searched_background,
            lung,
        }
    }
}

/// Whether voxel `index` lies in the uniform background: `WALL_MARGIN_MM` inside the wall,
/// and `BACKGROUND_MARGIN_MM` from the lung insert and from every sphere's surface.
fn in_uniform_background(grid: &Grid, index: usize, spheres: &[Sphere]) -> bool {
    let n = grid.size;
    let (x, y, z) = (grid.x_mm(index % n), grid.y_mm((index / n) % n), grid.z_mm(index / (n * n)));
    let inside = inside_with_margin(x, y, WALL_MARGIN_MM);
    let within_length = z - sphere_plane_mm(grid) > AXIAL_RANGE_MM[0] + WALL_MARGIN_MM
        && z - sphere_plane_mm(grid) < AXIAL_RANGE_MM[1] - WALL_MARGIN_MM;
    inside
        && within_length
        && x.hypot(y) > LUNG_INSERT_DIAMETER_MM / 2.0 + BACKGROUND_MARGIN_MM
        && spheres.iter().all(|s| {
            let [cx, cy, cz] = s.centre_mm;
            ((x - cx).powi(2) + (y - cy).powi(2) + (z - cz).powi(2)).sqrt() > s.radius_mm + BACKGROUND_MARGIN_MM
        })
}

fn mean_of(image: &Image3, roi: &[usize]) -> f64 {
    if roi.is_empty() {
        return f64::NAN;
    }
    roi.iter().map(|i| f64::from(image.data[*i])).sum::<f64>() / roi.len() as f64
}

fn relative_sd_percent(values: &[f64]) -> f64 {
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0).max(1.0);
    100.0 * variance.sqrt() / mean
}

/// The voxel CoV of the uniform background of the five background slices, percent.
pub fn background_cov_percent(image: &Image3, rois: &PhantomRois) -> f64 {
    let voxels: Vec<f64> = rois.background_voxels.iter().map(|i| f64::from(image.data[*i])).collect();
    relative_sd_percent(&voxels)
}

impl NemaMeasures {
    /// The figures of `image` (SUV) of a phantom filled at `contrast` : 1; background spots
    /// above `hot_spot_level` count as false hot spots.
    pub fn of(image: &Image3, rois: &PhantomRois, contrast: f64, hot_spot_level: f64) -> Self {
        let roi_means: Vec<f64> = rois.background.iter().map(|roi| mean_of(image, roi)).collect();
        let background_mean = roi_means.iter().sum::<f64>() / roi_means.len() as f64;
        let crc =
            rois.spheres.iter().map(|roi| (mean_of(image, roi) / background_mean - 1.0) / (contrast - 1.0)).collect();
        let highest = |roi: &Roi| roi.iter().map(|i| f64::from(image.data[*i])).fold(f64::NAN, f64::max);
        let suv_max: Vec<f64> = rois.sphere_volumes.iter().map(highest).collect();
        let suv_peak = rois
            .sphere_volumes
            .iter()
            .map(|roi| roi.iter().map(|i| peak_mean(image, *i)).fold(f64::NAN, f64::max))
            .collect();
        let rc_a50 = rois
            .sphere_surroundings
            .iter()
            .map(|roi| {
                let threshold = background_mean + 0.5 * (highest(roi) - background_mean);
                let above: Vec<usize> =
                    roi.iter().copied().filter(|i| f64::from(image.data[*i]) >= threshold).collect();
                mean_of(image, &above) / contrast
            })
            .collect();
        let mut searched = vec![false; image.data.len()];
        for index in &rois.searched_background {
            searched[*index] = true;
        }
        let false_hot_spots = connected_groups(image, |i| searched[i] && f64::from(image.data[i]) > hot_spot_level)
            .iter()
            .filter(|group| group.len() >= 2)
            .count() as f64;
        Self {
            crc,
            rc_max: suv_max.iter().map(|m| m / contrast).collect(),
            suv_max,
            suv_peak,
            rc_a50,
            false_hot_spots,
            background_mean,
            background_variability_percent: relative_sd_percent(&roi_means),
            background_cov_percent: background_cov_percent(image, rois),
            lung_residual_percent: 100.0 * mean_of(image, &rois.lung) / background_mean,
        }
    }
}

/// The sphere diameters, for reports.
pub fn sphere_diameters() -> [f64; 6] {
    SPHERE_DIAMETERS_MM
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::simulation::nema::draw;

    #[test]
    fn the_true_phantom_reads_full_recovery_flat_background_and_a_cold_lung() {
        let grid = Grid::with_spacing(96, 16, 4.0, 3.0);
        let phantom = draw(1, grid, 4.0);
        let rois = PhantomRois::on(&grid);
        assert_eq!(rois.background.len(), 60);
        assert!(rois.background.iter().all(|roi| roi.len() >= 3), "every background ROI holds voxels");
        let measures = NemaMeasures::of(&phantom.activity, &rois, 4.0, 1.5);
        assert!((measures.background_mean - 1.0).abs() < 1e-6);
        assert!(measures.background_variability_percent < 1e-6 && measures.background_cov_percent < 1e-6);
        assert!(measures.lung_residual_percent.abs() < 1e-6);
        // An ROI's rim voxels hold part of the sphere: 5–25 % of the recovery on 4 mm voxels,
        // even for the truth itself.
        assert!(measures.crc.iter().all(|c| (0.75..=1.0 + 1e-9).contains(c)), "{:?}", measures.crc);
        assert!(measures.crc[5] > 0.9, "{:?}", measures.crc);
        assert!(measures.rc_max.iter().all(|r| (r - 1.0).abs() < 1e-6), "{:?}", measures.rc_max);
        assert_eq!(measures.false_hot_spots, 0.0, "the true background is flat");
        // The spheres above 1 mL hold a whole 1 mL sphere at their activity.
        assert!(measures.suv_peak[3..].iter().all(|p| (p - 4.0).abs() < 1e-6), "{:?}", measures.suv_peak);
    }
}
