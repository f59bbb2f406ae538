//! A stored series as a normalised volume for training: its Part 10 files assembled
//! ([`super::volume`]), normalised to SUV where the header allows, with the geometry a
//! Noise2Noise partner must share; and the pair of two such series.

use super::volume::{Slice, VolumeError, assemble};
use crate::science::image::{Grid, Image3};
use crate::science::training::n2n_round::N2nPair;

#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("the series cannot be made into a volume: {0}")]
    Volume(#[from] VolumeError),
    #[error("training needs square slices, these are {rows}×{columns}")]
    NotSquare { rows: u32, columns: u32 },
    #[error("the two series do not share their geometry: {0}")]
    Geometry(String),
}

/// A stored series as a normalised volume, with the geometry a partner must share.
#[derive(Debug, Clone)]
pub struct SeriesImage {
    pub image: Image3,
    /// Each slice's position (mm), in volume order.
    positions: Vec<[f64; 3]>,
    orientation: [f64; 6],
}

/// Reads a series' Part 10 files into a normalised (SUV where the header allows) volume.
pub fn series_image(files: &[Vec<u8>]) -> Result<SeriesImage, PairError> {
    let slices = files.iter().map(|bytes| Slice::from_part10(bytes)).collect::<Result<Vec<_>, _>>()?;
    let volume = assemble(slices)?;
    let first = &volume.slices[0];
    if first.rows != first.columns {
        return Err(PairError::NotSquare { rows: first.rows, columns: first.columns });
    }
    let grid = Grid {
        size: first.rows as usize,
        slices: volume.slices.len(),
        pixel_mm: first.pixel_spacing[0],
        slice_mm: volume.slice_spacing,
    };
    let norm = volume.normalisation;
    let data = volume.slices.iter().flat_map(|s| s.values.iter().map(move |v| norm.forward(*v))).collect();
    Ok(SeriesImage {
        image: Image3 { grid, data },
        positions: volume.slices.iter().map(|s| s.position).collect(),
        orientation: first.orientation,
    })
}

/// The pair of two series, which must share size, spacing, orientation and slice positions.
pub fn pair_of(a: SeriesImage, b: SeriesImage) -> Result<N2nPair, PairError> {
    a.check_same_geometry(&b)?;
    Ok(N2nPair { a: a.image, b: b.image })
}

impl SeriesImage {
    /// Whether `other` lies on the same voxels: size, spacing, orientation and slice
    /// positions; the error says what differs.
    pub fn check_same_geometry(&self, other: &SeriesImage) -> Result<(), PairError> {
        let (ga, gb) = (self.image.grid, other.image.grid);
        if ga.size != gb.size || ga.slices != gb.slices {
            return Err(PairError::Geometry(format!(
                "{}×{}×{} against {}×{}×{}",
                ga.size, ga.size, ga.slices, gb.size, gb.size, gb.slices
            )));
        }
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-3 * x.abs().max(y.abs()).max(1.0);
        if !close(ga.pixel_mm, gb.pixel_mm) || !close(ga.slice_mm, gb.slice_mm) {
            return Err(PairError::Geometry(format!(
                "voxels of {:.3}×{:.3} mm against {:.3}×{:.3} mm",
                ga.pixel_mm, ga.slice_mm, gb.pixel_mm, gb.slice_mm
            )));
        }
        if self.orientation.iter().zip(&other.orientation).any(|(x, y)| (x - y).abs() > 1e-4) {
            return Err(PairError::Geometry("the slices are oriented differently".into()));
        }
        if self.positions.iter().zip(&other.positions).any(|(p, q)| p.iter().zip(q).any(|(x, y)| (x - y).abs() > 0.01))
        {
            return Err(PairError::Geometry("the slices lie at different positions".into()));
        }
        Ok(())
    }
}
