//! The NEMA NU 2 / IEC 61675-1 body phantom, the object PET physicists use to judge image
//! quality: a water-filled torso-shaped tank with six fillable spheres of 10, 13, 17, 22,
//! 28 and 37 mm inner diameter on a ring around a central lung insert.
//!
//! petal's version has the standard's dimensions where they shape the figures:
//! - interior cross-section 294 × 224 mm: an anterior half-disc of radius 147 mm and a
//!   posterior part with 77 mm rounded corners, 180 mm long;
//! - sphere centres 57.2 mm from the phantom's axis, in the transverse plane of the grid's
//!   middle slice (slice `slices / 2`), the 37 mm sphere posterior-left;
//! - the lung insert: a cylinder of 51 mm diameter along the axis, low-density (lung)
//!   attenuation and no activity.
//!
//! The background reads SUV 1 and the spheres `contrast` (4, 8 or 10 : 1, the EARL
//! ratios). Walls (1 mm glass, 3 mm PMMA) are not drawn. Label maps: `body` is the tank's
//! interior; `liver` marks the uniform background (water, outside the lung insert and 15 mm
//! from every sphere), where background variability is measured; `lesions` the spheres, 1 to
//! 6 from the smallest.

use super::phantom::{Lesion, PatientParameters, Phantom, Uptake};
use super::spheres::Sphere;
use crate::science::image::{Grid, Image3};

/// Inner diameters of the spheres (mm), smallest first.
pub const SPHERE_DIAMETERS_MM: [f64; 6] = [10.0, 13.0, 17.0, 22.0, 28.0, 37.0];
/// Distance of the sphere centres from the phantom's axis (mm).
pub const SPHERE_RING_RADIUS_MM: f64 = 57.2;
/// Radius of the anterior half-disc (mm): half the interior width.
pub const HALF_WIDTH_MM: f64 = 147.0;
/// Radius of the posterior corners (mm); the posterior wall is this far behind the axis.
pub const CORNER_RADIUS_MM: f64 = 77.0;
/// Diameter of the lung insert (mm).
pub const LUNG_INSERT_DIAMETER_MM: f64 = 51.0;
/// Axial extent of the interior relative to the sphere plane (mm): from 110 mm below it to
/// 70 mm above it (180 mm in all).
pub const AXIAL_RANGE_MM: [f64; 2] = [-110.0, 70.0];
/// Distance from any sphere's surface within which a voxel is not background (mm).
pub const BACKGROUND_MARGIN_MM: f64 = 15.0;

const MU_WATER: f32 = 0.0096;
const MU_LUNG_INSERT: f32 = 0.0029;

/// Whether an in-plane point (mm) is inside the tank's cross-section.
pub fn inside_cross_section(x: f64, y: f64) -> bool {
    if y <= 0.0 {
        return x * x + y * y <= HALF_WIDTH_MM * HALF_WIDTH_MM;
    }
    if y > CORNER_RADIUS_MM {
        return false;
    }
    let straight = HALF_WIDTH_MM - CORNER_RADIUS_MM;
    if x.abs() <= straight {
        return true;
    }
    (x.abs() - straight).powi(2) + y * y <= CORNER_RADIUS_MM * CORNER_RADIUS_MM
}

/// Whether the in-plane point (mm) lies at least `margin_mm` inside the tank's wall
/// (checked at 16 points on a circle of that radius).
pub fn inside_with_margin(x: f64, y: f64, margin_mm: f64) -> bool {
    (0..16).all(|k| {
        let theta = f64::from(k) * std::f64::consts::PI / 8.0;
        inside_cross_section(x + margin_mm * theta.cos(), y + margin_mm * theta.sin())
    })
}

/// Patient z (mm) of the spheres' plane on `grid`: the centre of its middle slice, so that
/// one slice cuts every sphere through its centre.
pub fn sphere_plane_mm(grid: &Grid) -> f64 {
    grid.z_mm(grid.slices / 2)
}

/// The spheres, smallest first, on their ring in the plane `plane_z_mm` (mm).
pub fn spheres(plane_z_mm: f64) -> [Sphere; 6] {
    std::array::from_fn(|k| {
        // 60° apart, the largest at 45° behind the axis on the patient's left (+x, +y).
        let angle = (45.0 - 60.0 * (5 - k) as f64).to_radians();
        Sphere {
            centre_mm: [SPHERE_RING_RADIUS_MM * angle.cos(), SPHERE_RING_RADIUS_MM * angle.sin(), plane_z_mm],
            radius_mm: SPHERE_DIAMETERS_MM[k] / 2.0,
        }
    })
}

/// Farthest point of the interior from the axis (mm): what the field of view must hold.
pub fn outer_radius_mm() -> f64 {
    HALF_WIDTH_MM
}

/// Draws the phantom on `grid`; `seed` only sets the header values (weight, dose).
pub fn draw(seed: u64, grid: Grid, contrast: f64) -> Phantom {
    let mut patient = PatientParameters::from_seed(seed);
    patient.size_scale = 1.0;
    patient.uptake = Uptake {
        soft_tissue: 1.0,
        lung: 0.0,
        liver: 1.0,
        myocardium: 0.0,
        blood_pool: 0.0,
        spine: 0.0,
        kidney: 0.0,
        bladder: 0.0,
    };
    let voxels = grid.voxels();
    let mut activity = Image3::zeros(grid);
    let mut attenuation = Image3::zeros(grid);
    let (mut body, mut background, mut labels) = (vec![false; voxels], vec![false; voxels], vec![0u8; voxels]);
    let n = grid.size;
    let lung_r2 = (LUNG_INSERT_DIAMETER_MM / 2.0).powi(2);
    let plane_mm = sphere_plane_mm(&grid);
    let sphere_list = spheres(plane_mm);
    for z in 0..grid.slices {
        let z_mm = grid.z_mm(z);
        if z_mm - plane_mm < AXIAL_RANGE_MM[0] || z_mm - plane_mm > AXIAL_RANGE_MM[1] {
            continue;
        }
        for y in 0..n {
            for x in 0..n {
                let (x_mm, y_mm) = (grid.x_mm(x), grid.y_mm(y));
                if !inside_cross_section(x_mm, y_mm) {
                    continue;
                }
                let index = (z * n + y) * n + x;
                body[index] = true;
                if x_mm * x_mm + y_mm * y_mm <= lung_r2 {
                    attenuation.data[index] = MU_LUNG_INSERT;
                    continue;
                }
                attenuation.data[index] = MU_WATER;
                activity.data[index] = 1.0;
                let near_sphere = sphere_list.iter().any(|s| {
                    let d2 = (x_mm - s.centre_mm[0]).powi(2)
                        + (y_mm - s.centre_mm[1]).powi(2)
                        + (z_mm - s.centre_mm[2]).powi(2);
                    d2 <= (s.radius_mm + BACKGROUND_MARGIN_MM).powi(2)
                });
                background[index] = !near_sphere;
            }
        }
    }
    let mut lesion_list = Vec::new();
    for (k, sphere) in sphere_list.iter().enumerate() {
        let label = k as u8 + 1;
        for (index, share) in sphere.coverage(&grid) {
            if !body[index] {
                continue;
            }
            let value = activity.data[index];
            activity.data[index] = value + share * (contrast as f32 - value);
            if share >= 0.5 {
                labels[index] = label;
            }
        }
        lesion_list.push(Lesion {
            label,
            organ: format!("sphere {} mm", SPHERE_DIAMETERS_MM[k]),
            centre_mm: sphere.centre_mm,
            radius_mm: sphere.radius_mm,
            contrast,
            suv: contrast,
        });
    }
    Phantom { patient, activity, attenuation, body, liver: background, lesions: labels, lesion_list }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phantom_has_the_standards_shape_spheres_and_contrast() {
        let grid = Grid::with_spacing(80, 16, 4.0, 3.0);
        let phantom = draw(1, grid, 4.0);
        assert_eq!(phantom.lesion_list.len(), 6);
        // Every sphere lies inside the tank, clear of the lung insert and of each other.
        let list = spheres(sphere_plane_mm(&grid));
        for (i, a) in list.iter().enumerate() {
            let [x, y, _] = a.centre_mm;
            for angle in 0..36 {
                let theta = f64::from(angle) * 10f64.to_radians();
                assert!(inside_cross_section(x + a.radius_mm * theta.cos(), y + a.radius_mm * theta.sin()));
            }
            assert!((x * x + y * y).sqrt() - a.radius_mm > LUNG_INSERT_DIAMETER_MM / 2.0);
            for b in &list[i + 1..] {
                let d = ((x - b.centre_mm[0]).powi(2) + (y - b.centre_mm[1]).powi(2)).sqrt();
                assert!(d > a.radius_mm + b.radius_mm, "spheres overlap");
            }
        }
        // The background reads 1, the spheres' total activity is contrast × their volume.
        assert!((phantom.activity.masked_mean(&phantom.liver) - 1.0).abs() < 1e-6);
        let voxel_ml = 4.0 * 4.0 * 3.0 / 1000.0;
        for (k, sphere) in list.iter().enumerate() {
            let excess: f64 = sphere
                .coverage(&grid)
                .iter()
                .map(|(index, _)| f64::from(phantom.activity.data[*index]) - 1.0)
                .sum::<f64>()
                * voxel_ml;
            let expected = (4.0 - 1.0) * sphere.volume_ml();
            assert!(
                (excess / expected - 1.0).abs() < 0.05,
                "sphere {k}: excess activity {excess} mL·SUV vs {expected}"
            );
        }
        // The lung insert is cold and attenuates less than water.
        let centre = (8 * 80 + 40) * 80 + 40;
        assert_eq!(phantom.activity.data[centre], 0.0);
        assert_eq!(phantom.attenuation.data[centre], MU_LUNG_INSERT);
    }
}
