//! The voxel grid the simulator works on: a stack of square axial slices in patient
//! coordinates (LPS, as DICOM: +x towards the patient's left, +y posterior, +z head), and
//! a volume of `f32` values on it.

/// Size and spacing of a simulated volume.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Grid {
    /// Pixels along each in-plane axis (the slices are square).
    pub size: usize,
    /// Number of axial slices.
    pub slices: usize,
    /// In-plane pixel size (mm).
    pub pixel_mm: f64,
    /// Distance between slice centres (mm).
    pub slice_mm: f64,
}

impl Grid {
    /// Transaxial field of view (mm), the same for every matrix size, so that a bigger
    /// matrix means smaller pixels as on a scanner.
    pub const FIELD_OF_VIEW_MM: f64 = 600.0;

    /// A grid over the standard field of view with slices as thick as the pixels are wide.
    pub fn new(size: usize, slices: usize) -> Self {
        let pixel_mm = Self::FIELD_OF_VIEW_MM / size as f64;
        Self { size, slices, pixel_mm, slice_mm: pixel_mm }
    }

    /// A grid with the given spacing (mm): the field of view is then `size × pixel_mm`.
    pub fn with_spacing(size: usize, slices: usize, pixel_mm: f64, slice_mm: f64) -> Self {
        Self { size, slices, pixel_mm, slice_mm }
    }

    /// Transaxial field of view of this grid (mm).
    pub fn field_of_view_mm(&self) -> f64 {
        self.size as f64 * self.pixel_mm
    }

    /// Axial length covered by the slices (mm).
    pub fn axial_extent_mm(&self) -> f64 {
        self.slices as f64 * self.slice_mm
    }

    pub fn pixels_per_slice(&self) -> usize {
        self.size * self.size
    }

    pub fn voxels(&self) -> usize {
        self.pixels_per_slice() * self.slices
    }

    /// Patient x (mm) of the centre of column `column`.
    pub fn x_mm(&self, column: usize) -> f64 {
        (column as f64 + 0.5 - self.size as f64 / 2.0) * self.pixel_mm
    }

    /// Patient y (mm) of the centre of row `row`.
    pub fn y_mm(&self, row: usize) -> f64 {
        self.x_mm(row)
    }

    /// Patient z (mm) of slice `slice`; slice 0 is the most inferior, z grows towards the head.
    pub fn z_mm(&self, slice: usize) -> f64 {
        (slice as f64 + 0.5 - self.slices as f64 / 2.0) * self.slice_mm
    }

    /// Position along the body of slice `slice`, from 0 at the top of the thorax to 1 at the
    /// pelvis: the phantom's anatomy is laid out on this scale, so any number of slices
    /// covers the same organs.
    pub fn body_position(&self, slice: usize) -> f64 {
        1.0 - (slice as f64 + 0.5) / self.slices as f64
    }
}

/// Values on a [`Grid`], slice-major then row-major (index `(z * size + y) * size + x`).
#[derive(Debug, Clone, PartialEq)]
pub struct Image3 {
    pub grid: Grid,
    pub data: Vec<f32>,
}

impl Image3 {
    pub fn zeros(grid: Grid) -> Self {
        Self { grid, data: vec![0.0; grid.voxels()] }
    }

    pub fn slice(&self, z: usize) -> &[f32] {
        let n = self.grid.pixels_per_slice();
        &self.data[z * n..(z + 1) * n]
    }

    pub fn slices(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.grid.pixels_per_slice())
    }

    /// Builds a volume from its slices, in order.
    pub fn from_slices(grid: Grid, slices: Vec<Vec<f32>>) -> Self {
        debug_assert!(slices.iter().all(|s| s.len() == grid.pixels_per_slice()));
        Self { grid, data: slices.concat() }
    }

    /// Mean of the voxels where `mask` is set (0 for an empty mask).
    pub fn masked_mean(&self, mask: &[bool]) -> f64 {
        let (sum, count) = self
            .data
            .iter()
            .zip(mask)
            .filter(|(_, m)| **m)
            .fold((0.0f64, 0usize), |(s, c), (v, _)| (s + f64::from(*v), c + 1));
        if count == 0 { 0.0 } else { sum / count as f64 }
    }

    /// Standard deviation of the voxels where `mask` is set.
    pub fn masked_std(&self, mask: &[bool]) -> f64 {
        let mean = self.masked_mean(mask);
        let (sum, count) = self
            .data
            .iter()
            .zip(mask)
            .filter(|(_, m)| **m)
            .fold((0.0f64, 0usize), |(s, c), (v, _)| (s + (f64::from(*v) - mean).powi(2), c + 1));
        if count < 2 { 0.0 } else { (sum / (count - 1) as f64).sqrt() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_centres_are_symmetric_about_the_axis() {
        let grid = Grid::new(4, 2);
        assert_eq!(grid.pixel_mm, 150.0);
        assert_eq!(grid.x_mm(0), -225.0);
        assert_eq!(grid.x_mm(3), 225.0);
        assert_eq!(grid.z_mm(0), -75.0);
        assert!(grid.body_position(0) > grid.body_position(1), "slice 0 is the most inferior");
    }

    #[test]
    fn masked_statistics_ignore_unmasked_voxels() {
        let grid = Grid::new(2, 1);
        let image = Image3 { grid, data: vec![1.0, 3.0, 100.0, -50.0] };
        let mask = [true, true, false, false];
        assert_eq!(image.masked_mean(&mask), 2.0);
        assert!((image.masked_std(&mask) - 2f64.sqrt()).abs() < 1e-12);
    }
}
