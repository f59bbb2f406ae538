//! The digital patient: a whole-body FDG phantom from the top of the thorax to the pelvis,
//! drawn from a seed. Activity is in SUV (so soft tissue is ≈ 1), attenuation in 1/mm at
//! 511 keV, and label maps mark the body, the liver and each lesion.
//!
//! Organs are ellipsoids laid out along the body (see [`Grid::body_position`]); later
//! organs overwrite earlier ones, lesions last. Patient size, weight, injected dose, uptake
//! time and organ uptakes vary from seed to seed within clinically plausible ranges.

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::anatomy::{BodyAxis, Section};
use super::spheres::Sphere;
use crate::science::image::{Grid, Image3};

/// Linear attenuation coefficients at 511 keV (1/mm).
const MU_SOFT_TISSUE: f32 = 0.0096;
const MU_LUNG: f32 = 0.0029;
const MU_BONE: f32 = 0.0130;

/// Who the phantom is: the numbers a scanner's header carries, and organ uptakes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PatientParameters {
    pub seed: u64,
    /// Scales every in-plane dimension of the body and organs.
    pub size_scale: f64,
    pub weight_kg: f64,
    pub height_m: f64,
    pub sex: char,
    pub age_years: u32,
    /// FDG injected (Bq), at `uptake_minutes` before the scan starts.
    pub injected_dose_bq: f64,
    pub uptake_minutes: f64,
    /// SUV of each tissue.
    pub uptake: Uptake,
}

/// Mean SUV per tissue.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Uptake {
    pub soft_tissue: f64,
    pub lung: f64,
    pub liver: f64,
    pub myocardium: f64,
    pub blood_pool: f64,
    pub spine: f64,
    pub kidney: f64,
    pub bladder: f64,
}

/// A spherical lesion of known position, radius and contrast.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lesion {
    /// 1-based label in the lesion map.
    pub label: u8,
    /// Where it sits (e.g. "liver", "lung", "soft tissue").
    pub organ: String,
    /// Centre in patient coordinates (mm).
    pub centre_mm: [f64; 3],
    pub radius_mm: f64,
    /// Lesion SUV divided by the SUV of the tissue around it.
    pub contrast: f64,
    /// The lesion's SUV.
    pub suv: f64,
}

/// The object reaches beyond what the scanner reconstructs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutsideFieldOfView {
    #[error(
        "the object is wider than the {field_of_view_mm:.0} mm field of view (size × pixel size): raise the pixel count or the pixel size"
    )]
    Cut { field_of_view_mm: f64 },
    #[error(
        "the object reaches {reach_mm:.0} mm from the axis, but OSEM reconstructs only the circle inscribed in the {field_of_view_mm:.0} mm field of view: raise the pixel count or the pixel size"
    )]
    BeyondCircle { reach_mm: f64, field_of_view_mm: f64 },
}

/// The phantom on a grid.
#[derive(Debug, Clone)]
pub struct Phantom {
    pub patient: PatientParameters,
    /// True activity (SUV).
    pub activity: Image3,
    /// Attenuation at 511 keV (1/mm).
    pub attenuation: Image3,
    pub body: Vec<bool>,
    pub liver: Vec<bool>,
    /// 0 outside lesions, else the lesion's label.
    pub lesions: Vec<u8>,
    pub lesion_list: Vec<Lesion>,
}

impl PatientParameters {
    /// A plausible patient for `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x05ee_d0f7_e7a1);
        let size_scale = rng.random_range(0.88..1.12);
        let height_m: f64 = rng.random_range(1.55..1.92);
        let weight_kg = (24.0 * height_m * height_m * size_scale * size_scale * rng.random_range(0.85..1.2)).round();
        let soft_tissue = rng.random_range(0.9..1.1);
        Self {
            seed,
            size_scale,
            weight_kg,
            height_m: (height_m * 100.0).round() / 100.0,
            sex: if rng.random_bool(0.5) { 'F' } else { 'M' },
            age_years: rng.random_range(35..80),
            injected_dose_bq: (rng.random_range(300.0..400.0) * 1e6_f64).round(),
            uptake_minutes: rng.random_range(55.0..70.0_f64).round(),
            uptake: Uptake {
                soft_tissue,
                lung: 0.35 * soft_tissue,
                liver: rng.random_range(2.0..2.8),
                myocardium: rng.random_range(2.5..8.0),
                blood_pool: rng.random_range(1.5..2.0),
                spine: rng.random_range(1.6..2.2),
                kidney: rng.random_range(3.0..5.0),
                bladder: rng.random_range(10.0..30.0),
            },
        }
    }
}

/// An ellipsoid: in-plane centre and semi-axes (mm, before patient scaling) and its extent
/// along the body (positions 0..1).
#[derive(Debug, Clone, Copy)]
struct Ellipsoid {
    centre: [f64; 2],
    semi_axes: [f64; 2],
    body_range: [f64; 2],
}

impl Ellipsoid {
    /// Whether the point is inside; ellipsoidal along the body too (widest mid-range).
    fn contains(&self, x: f64, y: f64, t: f64, scale: f64) -> bool {
        let [t0, t1] = self.body_range;
        if t <= t0 || t >= t1 {
            return false;
        }
        let along = (2.0 * t - t0 - t1) / (t1 - t0);
        let shrink = (1.0 - along * along).sqrt();
        let a = self.semi_axes[0] * scale * shrink;
        let b = self.semi_axes[1] * scale * shrink;
        let (dx, dy) = (x - self.centre[0] * scale, y - self.centre[1] * scale);
        a > 0.0 && b > 0.0 && (dx / a).powi(2) + (dy / b).powi(2) <= 1.0
    }
}

/// Semi-axes of the body outline (mm, before scaling) along the body: thorax, abdomen, pelvis.
fn body_semi_axes(t: f64) -> [f64; 2] {
    let thorax = [165.0, 115.0];
    let abdomen = [150.0, 112.0];
    let pelvis = [170.0, 108.0];
    let blend = |a: [f64; 2], b: [f64; 2], w: f64| [a[0] + (b[0] - a[0]) * w, a[1] + (b[1] - a[1]) * w];
    if t < 0.45 {
        blend(thorax, abdomen, (t / 0.45).clamp(0.0, 1.0))
    } else {
        blend(abdomen, pelvis, ((t - 0.45) / 0.55).clamp(0.0, 1.0))
    }
}

const LUNG_RIGHT: Ellipsoid = Ellipsoid { centre: [-72.0, -5.0], semi_axes: [52.0, 78.0], body_range: [-0.05, 0.44] };
const LUNG_LEFT: Ellipsoid = Ellipsoid { centre: [75.0, -5.0], semi_axes: [48.0, 76.0], body_range: [-0.05, 0.40] };
const HEART: Ellipsoid = Ellipsoid { centre: [28.0, -30.0], semi_axes: [48.0, 42.0], body_range: [0.14, 0.42] };
const HEART_CAVITY: Ellipsoid = Ellipsoid { centre: [28.0, -30.0], semi_axes: [32.0, 27.0], body_range: [0.17, 0.39] };
const LIVER: Ellipsoid = Ellipsoid { centre: [-55.0, -8.0], semi_axes: [88.0, 78.0], body_range: [0.34, 0.66] };
const KIDNEY_RIGHT: Ellipsoid = Ellipsoid { centre: [-62.0, 48.0], semi_axes: [27.0, 33.0], body_range: [0.56, 0.78] };
const KIDNEY_LEFT: Ellipsoid = Ellipsoid { centre: [62.0, 48.0], semi_axes: [27.0, 33.0], body_range: [0.52, 0.74] };
const BLADDER: Ellipsoid = Ellipsoid { centre: [0.0, -25.0], semi_axes: [42.0, 35.0], body_range: [0.84, 1.04] };
/// The spine: a cylinder behind the organs, all along the body.
const SPINE_CENTRE: [f64; 2] = [0.0, 72.0];
const SPINE_RADIUS: f64 = 17.0;

/// The tissue at a point, before lesions: (SUV, attenuation, inside body, inside liver).
fn tissue(patient: &PatientParameters, x: f64, y: f64, t: f64) -> (f64, f32, bool, bool) {
    let s = patient.size_scale;
    let u = &patient.uptake;
    let [a, b] = body_semi_axes(t);
    if (x / (a * s)).powi(2) + (y / (b * s)).powi(2) > 1.0 || !(0.0..=1.0).contains(&t) {
        return (0.0, 0.0, false, false);
    }
    let mut value = (u.soft_tissue, MU_SOFT_TISSUE, false);
    let spine = ((x - SPINE_CENTRE[0] * s).powi(2) + (y - SPINE_CENTRE[1] * s).powi(2)).sqrt() <= SPINE_RADIUS * s;
    if spine {
        value = (u.spine, MU_BONE, false);
    }
    if LUNG_RIGHT.contains(x, y, t, s) || LUNG_LEFT.contains(x, y, t, s) {
        value = (u.lung, MU_LUNG, false);
    }
    if HEART.contains(x, y, t, s) {
        let cavity = HEART_CAVITY.contains(x, y, t, s);
        value = (if cavity { u.blood_pool } else { u.myocardium }, MU_SOFT_TISSUE, false);
    }
    if LIVER.contains(x, y, t, s) {
        value = (u.liver, MU_SOFT_TISSUE, true);
    }
    if KIDNEY_RIGHT.contains(x, y, t, s) || KIDNEY_LEFT.contains(x, y, t, s) {
        value = (u.kidney, MU_SOFT_TISSUE, false);
    }
    if BLADDER.contains(x, y, t, s) {
        value = (u.bladder, MU_SOFT_TISSUE, false);
    }
    (value.0, value.1, true, value.2)
}

/// Where a lesion of each kind may sit: its organ, the in-plane centre is
/// `base + uniform(x_range or y_range) × range_scale` (mm), and the body positions it may take.
struct LesionSite {
    organ: &'static str,
    base: [f64; 2],
    x_range: [f64; 2],
    y_range: [f64; 2],
    range_scale: f64,
    body_range: [f64; 2],
}

fn lesion_site(index: usize, scale: f64) -> LesionSite {
    match index % 3 {
        0 => LesionSite {
            organ: "liver",
            base: [LIVER.centre[0] * scale, LIVER.centre[1] * scale],
            x_range: [-25.0, 25.0],
            y_range: [-20.0, 20.0],
            range_scale: 1.0,
            body_range: [0.44, 0.56],
        },
        1 => LesionSite {
            organ: "lung",
            base: [LUNG_RIGHT.centre[0] * scale, LUNG_RIGHT.centre[1] * scale],
            x_range: [-15.0, 15.0],
            y_range: [-25.0, 25.0],
            range_scale: 1.0,
            body_range: [0.12, 0.3],
        },
        _ => LesionSite {
            organ: "soft tissue",
            base: [0.0, 0.0],
            x_range: [-40.0, 40.0],
            y_range: [-70.0, -50.0],
            range_scale: scale,
            body_range: [0.6, 0.8],
        },
    }
}

/// Places the patient's lesions: in the original layout, 1–4 of them, the first always in
/// the liver (the paper's test needs one there); in a section, see [`place_section_lesions`].
fn place_lesions(patient: &PatientParameters, grid: &Grid, fitted: bool, axis: &BodyAxis) -> Vec<Lesion> {
    if fitted { place_fitted_lesions(patient, grid, axis) } else { place_section_lesions(patient, grid, axis) }
}

/// The original layout's draws, kept bit for bit: 1–4 lesions of radius 7–15 mm (uniform),
/// one per site in turn.
fn place_fitted_lesions(patient: &PatientParameters, grid: &Grid, axis: &BodyAxis) -> Vec<Lesion> {
    let mut rng = StdRng::seed_from_u64(patient.seed ^ 0x01e5_10a5);
    let count = rng.random_range(1..=4);
    let s = patient.size_scale;
    let mut lesions = Vec::new();
    for index in 0..count {
        let site = lesion_site(index, s);
        let x = site.base[0] + rng.random_range(site.x_range[0]..site.x_range[1]) * site.range_scale;
        let y = site.base[1] + rng.random_range(site.y_range[0]..site.y_range[1]) * site.range_scale;
        let t = rng.random_range(site.body_range[0]..site.body_range[1]);
        // At least 0.9 voxel, so that a coarse grid still draws every lesion.
        let radius_mm = rng.random_range(7.0..15.0f64).max(0.9 * grid.pixel_mm.max(grid.slice_mm));
        let contrast = rng.random_range(2.5..6.0);
        let (background, ..) = tissue(patient, x, y, t);
        lesions.push(Lesion {
            label: lesions.len() as u8 + 1,
            organ: site.organ.to_owned(),
            centre_mm: [x, y, axis.z_of(t)],
            radius_mm,
            contrast,
            suv: background * contrast,
        });
    }
    lesions
}

/// Lesions of a section at true length: 2–6 per patient, each at a site the slices show
/// (liver, right lung, soft tissue), diameters of 6–30 mm log-uniform as lesion sizes are in
/// clinical series, contrast 2.5–6 over the tissue around it. One per site, as the original
/// layout has, would leave most sections one lesion or none, and a network trained on them
/// too few small hot spots to learn them from (docs/models.md).
fn place_section_lesions(patient: &PatientParameters, grid: &Grid, axis: &BodyAxis) -> Vec<Lesion> {
    const SITES: usize = 3;
    let mut rng = StdRng::seed_from_u64(patient.seed ^ 0x5ec7_10a5);
    let s = patient.size_scale;
    // Body positions the volume shows, its end slices excluded.
    let (shown_low, shown_high) = {
        let a = axis.t_of(grid.z_mm(grid.slices.saturating_sub(1)));
        let b = axis.t_of(grid.z_mm(0));
        (a.min(b), a.max(b))
    };
    let wanted = rng.random_range(2..=6usize);
    let mut lesions = Vec::new();
    for _attempt in 0..4 * wanted {
        if lesions.len() == wanted {
            break;
        }
        let site = lesion_site(rng.random_range(0..SITES), s);
        let x = site.base[0] + rng.random_range(site.x_range[0]..site.x_range[1]) * site.range_scale;
        let y = site.base[1] + rng.random_range(site.y_range[0]..site.y_range[1]) * site.range_scale;
        let radius_mm = rng.random_range(6.0f64.ln()..30.0f64.ln()).exp() / 2.0;
        // The lesion's centre within both the organ's range and the shown slices.
        let margin = radius_mm / axis.length_mm;
        let low = site.body_range[0].max(shown_low + margin);
        let high = site.body_range[1].min(shown_high - margin);
        let draw = rng.random_range(0.0..1.0);
        let contrast = rng.random_range(2.5..6.0);
        if low >= high {
            continue;
        }
        let t = low + draw * (high - low);
        let (background, ..) = tissue(patient, x, y, t);
        let centre_mm = [x, y, axis.z_of(t)];
        let apart = lesions.iter().all(|other: &Lesion| {
            let distance = (0..3).map(|k| (other.centre_mm[k] - centre_mm[k]).powi(2)).sum::<f64>().sqrt();
            distance > other.radius_mm + radius_mm + 5.0
        });
        if background <= 0.0 || !apart {
            continue;
        }
        lesions.push(Lesion {
            label: lesions.len() as u8 + 1,
            organ: site.organ.to_owned(),
            centre_mm,
            radius_mm,
            contrast,
            suv: background * contrast,
        });
    }
    lesions
}

impl Phantom {
    /// Draws the patient for `seed` onto `grid` in petal's original layout (the whole torso
    /// fitted onto the slices).
    pub fn generate(seed: u64, grid: Grid) -> Self {
        Self::draw_torso(seed, grid, None)
    }

    /// Draws the patient for `seed` onto `grid`: the whole torso fitted onto the slices when
    /// `section` is `None`, else the torso at its true length centred on `section`.
    pub fn draw_torso(seed: u64, grid: Grid, section: Option<Section>) -> Self {
        let fitted = section.is_none();
        let patient = PatientParameters::from_seed(seed);
        let axis = BodyAxis::new(section, grid.axial_extent_mm(), patient.height_m);
        let lesion_list = place_lesions(&patient, &grid, fitted, &axis);
        let mut activity = Image3::zeros(grid);
        let mut attenuation = Image3::zeros(grid);
        let voxels = grid.voxels();
        let (mut body, mut liver, mut lesions) = (vec![false; voxels], vec![false; voxels], vec![0u8; voxels]);
        let n = grid.size;
        for z in 0..grid.slices {
            // The original layout keeps its own arithmetic, so its draws stay bit for bit.
            let t = if fitted { grid.body_position(z) } else { axis.t_of(grid.z_mm(z)) };
            for y in 0..n {
                for x in 0..n {
                    let index = (z * n + y) * n + x;
                    let (suv, mu, in_body, in_liver) = tissue(&patient, grid.x_mm(x), grid.y_mm(y), t);
                    activity.data[index] = suv as f32;
                    attenuation.data[index] = mu;
                    body[index] = in_body;
                    liver[index] = in_liver;
                }
            }
        }
        for lesion in &lesion_list {
            let sphere = Sphere { centre_mm: lesion.centre_mm, radius_mm: lesion.radius_mm };
            if fitted {
                // Voxel centres inside the sphere, as the original layout drew them.
                for index in sphere.voxels_within(&grid, lesion.radius_mm) {
                    if body[index] {
                        activity.data[index] = lesion.suv as f32;
                        lesions[index] = lesion.label;
                    }
                }
            } else {
                for (index, share) in sphere.coverage(&grid) {
                    if !body[index] {
                        continue;
                    }
                    let value = activity.data[index];
                    activity.data[index] = value + share * (lesion.suv as f32 - value);
                    if share >= 0.5 {
                        lesions[index] = lesion.label;
                    }
                }
            }
        }
        Self { patient, activity, attenuation, body, liver, lesions, lesion_list }
    }

    /// Checks that the object lies inside the circle that OSEM reconstructs (the field of
    /// view's inscribed circle, less a pixel).
    pub fn check_field_of_view(&self) -> Result<(), OutsideFieldOfView> {
        let grid = self.activity.grid;
        let n = grid.size;
        let field_of_view_mm = grid.field_of_view_mm();
        let mut reach_mm = 0.0f64;
        for (index, _) in self.body.iter().enumerate().filter(|(_, inside)| **inside) {
            let (x, y) = (index % n, (index / n) % n);
            if x == 0 || y == 0 || x == n - 1 || y == n - 1 {
                return Err(OutsideFieldOfView::Cut { field_of_view_mm });
            }
            reach_mm = reach_mm.max(grid.x_mm(x).hypot(grid.y_mm(y)) + grid.pixel_mm / 2.0);
        }
        if reach_mm > field_of_view_mm / 2.0 - grid.pixel_mm / 2.0 {
            return Err(OutsideFieldOfView::BeyondCircle { reach_mm, field_of_view_mm });
        }
        Ok(())
    }

    /// Voxels of soft tissue away from organs and lesions: where SUV should read ≈ 1.
    pub fn soft_tissue_mask(&self) -> Vec<bool> {
        let target = self.patient.uptake.soft_tissue as f32;
        self.activity.data.iter().zip(&self.lesions).map(|(v, l)| *l == 0 && (*v - target).abs() < 1e-6).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_patient_and_another_seed_another() {
        let grid = Grid::new(32, 8);
        let a = Phantom::generate(3, grid);
        let b = Phantom::generate(3, grid);
        let c = Phantom::generate(4, grid);
        assert_eq!(a.activity, b.activity);
        assert_eq!(a.patient, b.patient);
        assert_ne!(a.patient, c.patient);
    }

    #[test]
    fn organs_have_their_uptake_and_the_body_its_attenuation() {
        let grid = Grid::new(64, 16);
        let phantom = Phantom::generate(11, grid);
        let u = &phantom.patient.uptake;
        let liver_and_no_lesion: Vec<bool> =
            phantom.liver.iter().zip(&phantom.lesions).map(|(l, s)| *l && *s == 0).collect();
        assert!(liver_and_no_lesion.iter().filter(|m| **m).count() > 100, "the liver is drawn");
        assert!((phantom.activity.masked_mean(&liver_and_no_lesion) - u.liver).abs() < 1e-5);
        let soft = phantom.soft_tissue_mask();
        assert!((phantom.activity.masked_mean(&soft) - u.soft_tissue).abs() < 1e-5);
        // Nothing outside the body: no activity, no attenuation.
        for ((a, mu), inside) in phantom.activity.data.iter().zip(&phantom.attenuation.data).zip(&phantom.body) {
            if !inside {
                assert_eq!((*a, *mu), (0.0, 0.0));
            }
        }
        // A body fills a good part of the field of view, and the lungs attenuate less.
        let body_fraction = phantom.body.iter().filter(|b| **b).count() as f64 / grid.voxels() as f64;
        assert!((0.15..0.6).contains(&body_fraction), "body fraction {body_fraction}");
        assert!(phantom.attenuation.data.contains(&MU_LUNG));
    }

    #[test]
    fn lesions_sit_where_listed_with_their_contrast() {
        let grid = Grid::new(64, 16);
        let phantom = Phantom::generate(5, grid);
        let first = &phantom.lesion_list[0];
        assert_eq!(first.organ, "liver");
        let voxels = phantom.lesions.iter().filter(|l| **l == first.label).count();
        assert!(voxels > 0, "the liver lesion covers voxels");
        let sphere_mm3 = 4.0 / 3.0 * std::f64::consts::PI * first.radius_mm.powi(3);
        let voxel_mm3 = grid.pixel_mm * grid.pixel_mm * grid.slice_mm;
        // Coarse voxels: the drawn volume is the sphere's within a factor of two.
        let ratio = voxels as f64 * voxel_mm3 / sphere_mm3;
        assert!((0.3..2.5).contains(&ratio), "drawn/sphere volume {ratio}");
        let in_lesion: Vec<bool> = phantom.lesions.iter().map(|l| *l == first.label).collect();
        assert!((phantom.activity.masked_mean(&in_lesion) - first.suv).abs() < 1e-5);
        assert!((first.suv / phantom.patient.uptake.liver - first.contrast).abs() < 1e-9);
    }
}
