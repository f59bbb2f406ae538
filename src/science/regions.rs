//! Regions of a volume that the gate and the evaluation measure SUV in: connected groups of
//! voxels (hot spots), and the SUVpeak around a voxel.
//!
//! ```
//! use petal::science::image::{Grid, Image3};
//! use petal::science::regions::connected_groups;
//! let grid = Grid::new(4, 1);
//! let mut image = Image3::zeros(grid);
//! image.data[0] = 5.0;
//! image.data[1] = 5.0; // joined to voxel 0
//! image.data[10] = 5.0; // on its own
//! let groups = connected_groups(&image, |i| image.data[i] > 1.0);
//! assert_eq!(groups, vec![vec![0, 1], vec![10]]);
//! ```

use super::image::Image3;

/// Radius (mm) of the sphere of 1 cm³ whose mean is SUVpeak (PERCIST).
pub const PEAK_RADIUS_MM: f64 = 6.2;

/// The connected groups (6-neighbourhood) of the voxels of `image`'s grid for which
/// `member` holds, each sorted by voxel index, in the order of their first voxel.
pub fn connected_groups(image: &Image3, member: impl Fn(usize) -> bool) -> Vec<Vec<usize>> {
    let size = image.grid.size;
    let plane = image.grid.pixels_per_slice();
    let voxels = image.data.len();
    let mut seen = vec![false; voxels];
    let mut groups = Vec::new();
    for start in 0..voxels {
        if seen[start] || !member(start) {
            continue;
        }
        seen[start] = true;
        let (mut stack, mut group) = (vec![start], Vec::new());
        while let Some(i) = stack.pop() {
            group.push(i);
            let (x, y) = (i % size, (i % plane) / size);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < size).then(|| i + 1),
                (y > 0).then(|| i - size),
                (y + 1 < size).then(|| i + size),
                i.checked_sub(plane),
                (i + plane < voxels).then_some(i + plane),
            ];
            for j in neighbours.into_iter().flatten() {
                if !seen[j] && member(j) {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        group.sort_unstable();
        groups.push(group);
    }
    groups
}

/// The voxel of `group` where `image` is highest.
pub fn hottest(image: &Image3, group: &[usize]) -> Option<usize> {
    group.iter().copied().max_by(|a, b| image.data[*a].total_cmp(&image.data[*b]))
}

/// The largest value of `image` over `group`.
pub fn max_over(image: &Image3, group: &[usize]) -> f64 {
    group.iter().map(|i| f64::from(image.data[*i])).fold(f64::NAN, f64::max)
}

/// SUVpeak at `centre`: the mean of `image` over the voxels whose centres lie within
/// [`PEAK_RADIUS_MM`] of its centre (at least the centre itself, however coarse the grid).
///
/// ```
/// use petal::science::image::{Grid, Image3};
/// use petal::science::regions::peak_mean;
/// // 5 mm voxels: the sphere holds the centre and its 6 face neighbours (5 mm away), not
/// // the 7.1 mm diagonals.
/// let mut grid = Grid::new(5, 3);
/// grid.pixel_mm = 5.0;
/// grid.slice_mm = 5.0;
/// let mut image = Image3::zeros(grid);
/// let centre = 25 + 2 * 5 + 2;
/// image.data[centre] = 7.0;
/// assert!((peak_mean(&image, centre) - 1.0).abs() < 1e-9);
/// ```
pub fn peak_mean(image: &Image3, centre: usize) -> f64 {
    let grid = image.grid;
    let (size, plane) = (grid.size as isize, grid.pixels_per_slice() as isize);
    let centre = centre as isize;
    let (cz, cy, cx) = (centre / plane, (centre % plane) / size, centre % size);
    let reach = |spacing: f64| (PEAK_RADIUS_MM / spacing).floor() as isize;
    let (reach_xy, reach_z) = (reach(grid.pixel_mm), reach(grid.slice_mm));
    let (mut sum, mut count) = (0.0, 0usize);
    for dz in -reach_z..=reach_z {
        for dy in -reach_xy..=reach_xy {
            for dx in -reach_xy..=reach_xy {
                let (z, y, x) = (cz + dz, cy + dy, cx + dx);
                if z < 0 || y < 0 || x < 0 || y >= size || x >= size || z * plane >= image.data.len() as isize {
                    continue;
                }
                let distance_squared = (dx as f64 * grid.pixel_mm).powi(2)
                    + (dy as f64 * grid.pixel_mm).powi(2)
                    + (dz as f64 * grid.slice_mm).powi(2);
                if distance_squared <= PEAK_RADIUS_MM * PEAK_RADIUS_MM {
                    sum += f64::from(image.data[(z * plane + y * size + x) as usize]);
                    count += 1;
                }
            }
        }
    }
    sum / count.max(1) as f64
}

/// Voxels clearly above the air on the slices where `in_slices` holds (given a voxel
/// index): above a quarter of the median of the voxels that carry any activity (above 2 %
/// of the maximum). Also returns that level (infinite when nothing carries activity).
pub fn body_mask(image: &Image3, in_slices: &dyn Fn(usize) -> bool) -> (Vec<bool>, f32) {
    let peak = image.data.iter().enumerate().filter(|(i, _)| in_slices(*i)).map(|(_, v)| *v).fold(0.0f32, f32::max);
    let mut active: Vec<f32> =
        image.data.iter().enumerate().filter(|(i, v)| in_slices(*i) && **v > 0.02 * peak).map(|(_, v)| *v).collect();
    if active.is_empty() || peak <= 0.0 {
        return (vec![false; image.data.len()], f32::INFINITY);
    }
    let middle = active.len() / 2;
    let median = *active.select_nth_unstable_by(middle, f32::total_cmp).1;
    let threshold = 0.25 * median;
    (image.data.iter().enumerate().map(|(i, v)| in_slices(i) && *v > threshold).collect(), threshold)
}

/// Uniform regions: local coefficient of variation below this, over a 5×5 window.
pub const UNIFORM_COV: f64 = 0.15;

/// The mean and standard deviation of `image` over the in-plane 5×5 window centred on
/// voxel `i`, and whether the whole window lies in `inside`; `None` at the image's edge.
fn window_statistics(image: &Image3, inside: &[bool], i: usize) -> Option<(f64, f64, bool)> {
    let size = image.grid.size;
    let plane = image.grid.pixels_per_slice();
    let (z, y, x) = (i / plane, (i % plane) / size, i % size);
    if y < 2 || x < 2 || y + 2 >= size || x + 2 >= size {
        return None;
    }
    let (mut sum, mut squares, mut all_inside) = (0.0, 0.0, true);
    for dy in 0..5 {
        for dx in 0..5 {
            let j = z * plane + (y + dy - 2) * size + (x + dx - 2);
            all_inside &= inside[j];
            let v = f64::from(image.data[j]);
            sum += v;
            squares += v * v;
        }
    }
    let mean = sum / 25.0;
    Some((mean, (squares / 25.0 - mean * mean).max(0.0).sqrt(), all_inside))
}

/// Body voxels, below `hot`, whose in-plane 5×5 neighbourhood lies in the body and has a
/// coefficient of variation below [`UNIFORM_COV`]: the large uniform regions (organs,
/// soft tissue) whose mean a reader measures.
pub fn uniform_mask(image: &Image3, body: &[bool], hot: f64) -> Vec<bool> {
    (0..image.data.len())
        .map(|i| {
            body[i]
                && f64::from(image.data[i]) < hot
                && window_statistics(image, body, i)
                    .is_some_and(|(mean, deviation, inside)| inside && mean > 0.0 && deviation / mean < UNIFORM_COV)
        })
        .collect()
}

/// Fewer voxels than this in a region: too few to measure its mean or noise.
pub const MIN_REGION_VOXELS: usize = 50;

/// The noise of `image` over `mask`: the root mean square of each voxel's deviation from
/// its in-plane 5×5 mean, in percent of the mask's mean. `None` for a mask of fewer than
/// [`MIN_REGION_VOXELS`] voxels (away from the image's edge) or without activity.
///
/// ```
/// use petal::science::image::{Grid, Image3};
/// use petal::science::regions::local_noise_percent;
/// let grid = Grid::new(16, 1);
/// let flat = Image3 { grid, data: vec![2.0; grid.voxels()] };
/// let mask = vec![true; grid.voxels()];
/// assert_eq!(local_noise_percent(&flat, &mask), Some(0.0));
/// // A checkerboard of 1 and 3 around a mean of 2: every voxel is about 1 from its window's mean.
/// let checker = Image3 { grid, data: (0..grid.voxels()).map(|i| if (i % 16 + i / 16) % 2 == 0 { 1.0 } else { 3.0 }).collect() };
/// let noise = local_noise_percent(&checker, &mask).unwrap();
/// assert!((noise - 50.0).abs() < 3.0, "{noise}");
/// ```
pub fn local_noise_percent(image: &Image3, mask: &[bool]) -> Option<f64> {
    let (mut squares, mut sum, mut count) = (0.0, 0.0, 0usize);
    for i in (0..image.data.len()).filter(|i| mask[*i]) {
        if let Some((mean, _, _)) = window_statistics(image, mask, i) {
            squares += (f64::from(image.data[i]) - mean).powi(2);
            sum += f64::from(image.data[i]);
            count += 1;
        }
    }
    let mean = sum / count.max(1) as f64;
    (count >= MIN_REGION_VOXELS && mean > 0.0).then(|| (squares / count as f64).sqrt() / mean * 100.0)
}

/// Connected groups of `body` voxels above `hot` in `image`, the hottest first, at most
/// `most`.
pub fn hot_groups(image: &Image3, body: &[bool], hot: f64, most: usize) -> Vec<Vec<usize>> {
    let mut groups = connected_groups(image, |i| body[i] && f64::from(image.data[i]) > hot);
    groups.sort_by(|a, b| max_over(image, b).total_cmp(&max_over(image, a)));
    groups.truncate(most);
    groups
}
