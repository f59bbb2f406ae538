//! What the simulator draws, and where along the body a volume lies.
//!
//! Three kinds of object:
//!
//! - [`Anatomy::FittedTorso`]: the torso from the top of the thorax to the pelvis, stretched
//!   or squeezed onto however many slices the grid has. This is the layout models/base was
//!   trained on; it keeps older studies and recorded results reproducible, but a volume of
//!   few slices squeezes the organs along z while lesions stay spherical.
//! - [`Anatomy::Torso`]: the same patient in millimetres along z. The grid then shows a
//!   section of the body, picked by [`Section`], so a 16-slice volume of 3 mm slices holds
//!   about 5 cm of anatomy around the liver (or the thorax, …) at its true shape.
//! - [`Anatomy::NemaIec`]: the NEMA NU 2 / IEC 61675-1 body phantom (see `nema.rs`).
//!
//! The torso's organs are laid out on a body position `t` from 0 (top of the thorax) to 1
//! (pelvis); [`BodyAxis`] maps patient z (mm) to `t` and back.

/// The object the simulator draws.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anatomy {
    /// The whole torso fitted onto the slices (petal's original layout).
    #[default]
    FittedTorso,
    /// The torso at its true length, the grid centred on `section`.
    Torso { section: Section },
    /// The NEMA IEC body phantom with its six spheres at `contrast` : 1 to the background.
    NemaIec { contrast: f64 },
}

impl Anatomy {
    /// Whether this is the original layout (whose draws must not change).
    pub fn is_fitted(&self) -> bool {
        matches!(self, Anatomy::FittedTorso)
    }

    /// A short label for headers and UIDs; empty for the original layout, so that the
    /// UIDs and descriptions of its studies stay as they were.
    pub fn label(&self) -> String {
        match self {
            Anatomy::FittedTorso => String::new(),
            Anatomy::Torso { section } => format!("torso-{}", section.name()),
            Anatomy::NemaIec { contrast } => format!("nema-{contrast}to1"),
        }
    }
}

/// The part of the torso a [`Anatomy::Torso`] volume is centred on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// Lungs, heart and the top of the liver.
    Thorax,
    /// The liver's dome to its lower edge (with the bases of the lungs above).
    Liver,
    /// Kidneys and bowel.
    Abdomen,
    /// The bladder.
    Pelvis,
    /// Centred mid-torso; shows the whole torso only when the volume is long enough.
    Whole,
}

/// A name that is not a section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a section of the body: use fit, thorax, liver, abdomen, pelvis or whole")]
pub struct UnknownSection(pub String);

impl Section {
    pub const ALL: [Section; 5] = [Section::Thorax, Section::Liver, Section::Abdomen, Section::Pelvis, Section::Whole];

    pub fn name(self) -> &'static str {
        match self {
            Section::Thorax => "thorax",
            Section::Liver => "liver",
            Section::Abdomen => "abdomen",
            Section::Pelvis => "pelvis",
            Section::Whole => "whole",
        }
    }

    /// Body position of the volume's centre.
    pub fn centre(self) -> f64 {
        match self {
            Section::Thorax => 0.24,
            Section::Liver => 0.5,
            Section::Abdomen => 0.66,
            Section::Pelvis => 0.9,
            Section::Whole => 0.5,
        }
    }
}

impl std::str::FromStr for Section {
    type Err = UnknownSection;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownSection(text.to_owned()))
    }
}

/// Length of the torso, top of the thorax to the pelvis, of a patient 1.75 m tall (mm).
/// Adults' trunks are close to 45 % of their height.
pub const TORSO_MM_AT_175_CM: f64 = 790.0;

/// Maps patient z (mm; 0 at the grid's centre, growing towards the head) to body position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyAxis {
    /// Body position at z = 0.
    pub centre: f64,
    /// Millimetres from t = 0 to t = 1.
    pub length_mm: f64,
}

impl BodyAxis {
    /// The axis of a torso on a volume `volume_mm` long, for a patient `height_m` tall:
    /// fitted onto the volume without a section, else at true length centred on `section`.
    pub fn new(section: Option<Section>, volume_mm: f64, height_m: f64) -> Self {
        match section {
            None => Self { centre: 0.5, length_mm: volume_mm },
            Some(section) => Self { centre: section.centre(), length_mm: TORSO_MM_AT_175_CM * height_m / 1.75 },
        }
    }

    pub fn t_of(&self, z_mm: f64) -> f64 {
        self.centre - z_mm / self.length_mm
    }

    pub fn z_of(&self, t: f64) -> f64 {
        (self.centre - t) * self.length_mm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::image::Grid;

    #[test]
    fn the_fitted_axis_is_the_original_slice_layout() {
        let grid = Grid::new(64, 16);
        let axis = BodyAxis::new(None, grid.slices as f64 * grid.slice_mm, 1.7);
        for z in 0..grid.slices {
            let original = 1.0 - (z as f64 + 0.5) / grid.slices as f64;
            assert!((axis.t_of(grid.z_mm(z)) - original).abs() < 1e-12);
        }
        assert!((axis.z_of(axis.t_of(37.0)) - 37.0).abs() < 1e-9);
    }

    #[test]
    fn a_torso_section_is_a_few_centimetres_of_anatomy_at_true_length() {
        let grid = Grid::with_spacing(64, 16, 4.0, 3.0);
        let axis = BodyAxis::new(Some(Section::Liver), 48.0, 1.75);
        let span = axis.t_of(grid.z_mm(0)) - axis.t_of(grid.z_mm(grid.slices - 1));
        // 45 mm of a 790 mm torso.
        assert!((span - 45.0 / 790.0).abs() < 1e-9, "span {span}");
        assert!((axis.t_of(0.0) - 0.5).abs() < 1e-12);
        assert_eq!("Pelvis".parse::<Section>(), Ok(Section::Pelvis));
        assert!("knee".parse::<Section>().is_err());
    }
}
