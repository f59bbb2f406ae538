//! Whole-volume inference as windows (docs/science.md §1), with no runtime in sight: a
//! 3-slice window slides along z with stride 1, edge slices are replicated, whole in-plane
//! slices go through at once, several windows share one call, and the centre output slice
//! of each window is kept. [`denoise_in_windows`] drives any function that maps a
//! [`WindowBatch`] to one of the same shape, so the windowing is tested on its own.

use std::ops::Range;

/// A volume or batch of the wrong shape, or a network that answered with another shape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WindowError {
    #[error("invalid shape: {0}")]
    InvalidShape(String),
    #[error("the network returned shape {found:?} for input shape {expected:?}")]
    OutputShape { expected: Vec<usize>, found: Vec<usize> },
}

/// A volume of `depth` axial slices of `height` × `width` pixels, stored row-major as
/// [depth, height, width] `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    depth: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Volume {
    /// A volume from its values; every dimension must be at least 1 and `data` must hold
    /// exactly depth × height × width values.
    pub fn new(depth: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Self, WindowError> {
        check_shape(&[depth, height, width], data.len())?;
        Ok(Self { depth, height, width, data })
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// [depth, height, width].
    pub fn shape(&self) -> [usize; 3] {
        [self.depth, self.height, self.width]
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// The pixels of slice `z` (row-major), or `None` past the last slice.
    pub fn slice(&self, z: usize) -> Option<&[f32]> {
        let plane = self.height * self.width;
        self.data.get(z * plane..(z + 1) * plane)
    }
}

/// A batch of windows as the network takes it: [windows, slices, height, width] `f32`,
/// row-major (ONNX's NCHW with the slices as channels).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowBatch {
    windows: usize,
    slices: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl WindowBatch {
    /// A batch from its values; every dimension must be at least 1.
    pub fn new(
        windows: usize,
        slices: usize,
        height: usize,
        width: usize,
        data: Vec<f32>,
    ) -> Result<Self, WindowError> {
        check_shape(&[windows, slices, height, width], data.len())?;
        Ok(Self { windows, slices, height, width, data })
    }

    /// [windows, slices, height, width].
    pub fn shape(&self) -> [usize; 4] {
        [self.windows, self.slices, self.height, self.width]
    }

    pub fn windows(&self) -> usize {
        self.windows
    }

    pub fn slices(&self) -> usize {
        self.slices
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Channel `slice` of window `window` (one in-plane image).
    pub fn plane(&self, window: usize, slice: usize) -> Option<&[f32]> {
        if window >= self.windows || slice >= self.slices {
            return None;
        }
        let plane = self.height * self.width;
        let start = (window * self.slices + slice) * plane;
        self.data.get(start..start + plane)
    }
}

fn check_shape(dims: &[usize], values: usize) -> Result<(), WindowError> {
    if dims.contains(&0) {
        return Err(WindowError::InvalidShape(format!("{dims:?} has an empty dimension")));
    }
    let expected = dims.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
    match expected {
        Some(expected) if expected == values => Ok(()),
        Some(expected) => {
            Err(WindowError::InvalidShape(format!("{dims:?} needs {expected} values, {values} were given")))
        }
        None => Err(WindowError::InvalidShape(format!("{dims:?} is too large"))),
    }
}

/// The slice that channel `channel` of the window centred on slice `centre` reads, in a
/// volume of `depth` slices seen `slices` at a time: neighbours of the centre, with the
/// first and last slice repeated past the edges.
pub fn source_slice(depth: usize, slices: usize, centre: usize, channel: usize) -> usize {
    let offset = centre as isize + channel as isize - (slices / 2) as isize;
    offset.clamp(0, depth.saturating_sub(1) as isize) as usize
}

/// The windows centred on the slices in `centres`, as one batch of `slices` channels.
pub fn gather_windows(volume: &Volume, slices: usize, centres: Range<usize>) -> Result<WindowBatch, WindowError> {
    if slices == 0 || centres.is_empty() || centres.end > volume.depth {
        return Err(WindowError::InvalidShape(format!(
            "windows {centres:?} of {slices} slices do not fit a volume of {} slices",
            volume.depth
        )));
    }
    let plane = volume.height * volume.width;
    let mut data = Vec::with_capacity(centres.len() * slices * plane);
    for centre in centres.clone() {
        for channel in 0..slices {
            let z = source_slice(volume.depth, slices, centre, channel);
            data.extend_from_slice(&volume.data[z * plane..(z + 1) * plane]);
        }
    }
    WindowBatch::new(centres.len(), slices, volume.height, volume.width, data)
}

/// Runs `run` over every window of `volume`, at most `batch` windows per call, and
/// assembles the centre output slice of each window into a volume of the same shape.
/// `run` must return a batch of the shape it was given.
pub fn denoise_in_windows<E: From<WindowError>>(
    volume: &Volume,
    slices: usize,
    batch: usize,
    mut run: impl FnMut(WindowBatch) -> Result<WindowBatch, E>,
) -> Result<Volume, E> {
    if slices == 0 {
        return Err(WindowError::InvalidShape("a window needs at least one slice".to_owned()).into());
    }
    let batch = batch.max(1);
    let plane = volume.height * volume.width;
    let mut output = Vec::with_capacity(volume.data.len());
    let mut start = 0;
    while start < volume.depth {
        let end = (start + batch).min(volume.depth);
        let input = gather_windows(volume, slices, start..end)?;
        let expected = input.shape();
        let result = run(input)?;
        if result.shape() != expected {
            return Err(WindowError::OutputShape { expected: expected.to_vec(), found: result.shape().to_vec() }.into());
        }
        for window in 0..result.windows {
            let centre = result.plane(window, slices / 2).ok_or_else(|| WindowError::OutputShape {
                expected: expected.to_vec(),
                found: result.shape().to_vec(),
            })?;
            output.extend_from_slice(centre);
        }
        start = end;
    }
    debug_assert_eq!(output.len(), volume.depth * plane);
    Ok(Volume::new(volume.depth, volume.height, volume.width, output)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A volume whose every pixel of slice z is z (plus a small in-plane ramp).
    fn labelled(depth: usize, height: usize, width: usize) -> Volume {
        let data = (0..depth).flat_map(|z| (0..height * width).map(move |i| z as f32 * 1000.0 + i as f32)).collect();
        Volume::new(depth, height, width, data).expect("volume")
    }

    fn slice_label(plane: &[f32]) -> f32 {
        plane[0] / 1000.0
    }

    fn window_labels(batch: &WindowBatch) -> Vec<Vec<f32>> {
        (0..batch.windows())
            .map(|w| (0..batch.slices()).map(|s| slice_label(batch.plane(w, s).expect("plane"))).collect())
            .collect()
    }

    #[test]
    fn edge_slices_are_replicated() {
        let volume = labelled(5, 2, 3);
        let batch = gather_windows(&volume, 3, 0..5).expect("windows");
        assert_eq!(batch.shape(), [5, 3, 2, 3]);
        assert_eq!(
            window_labels(&batch),
            vec![
                vec![0.0, 0.0, 1.0],
                vec![0.0, 1.0, 2.0],
                vec![1.0, 2.0, 3.0],
                vec![2.0, 3.0, 4.0],
                vec![3.0, 4.0, 4.0],
            ]
        );
        // Whole in-plane slices, unchanged.
        assert_eq!(batch.plane(2, 1), volume.slice(2));
    }

    #[test]
    fn depth_one_and_two_replicate_what_there_is() {
        let one = gather_windows(&labelled(1, 2, 2), 3, 0..1).expect("windows");
        assert_eq!(window_labels(&one), vec![vec![0.0, 0.0, 0.0]]);
        let two = gather_windows(&labelled(2, 2, 2), 3, 0..2).expect("windows");
        assert_eq!(window_labels(&two), vec![vec![0.0, 0.0, 1.0], vec![0.0, 1.0, 1.0]]);
        // Five-slice windows as well.
        let wide = gather_windows(&labelled(2, 1, 1), 5, 0..2).expect("windows");
        assert_eq!(window_labels(&wide), vec![vec![0.0, 0.0, 0.0, 1.0, 1.0], vec![0.0, 0.0, 1.0, 1.0, 1.0]]);
    }

    /// Marks each output channel differently, so the test sees which one was kept.
    fn mark_channels(batch: WindowBatch) -> Result<WindowBatch, WindowError> {
        let [windows, slices, height, width] = batch.shape();
        let plane = height * width;
        let data =
            batch.into_data().into_iter().enumerate().map(|(i, v)| v + 0.25 * ((i / plane) % slices) as f32).collect();
        WindowBatch::new(windows, slices, height, width, data)
    }

    #[test]
    fn the_centre_output_slice_is_kept_in_order() {
        for depth in [1, 2, 3, 5, 7] {
            for batch in [1, 2, 3, 8] {
                let volume = labelled(depth, 3, 4);
                let mut calls = 0;
                let output = denoise_in_windows(&volume, 3, batch, |b| {
                    calls += 1;
                    assert!(b.windows() <= batch);
                    mark_channels(b)
                })
                .expect("denoised");
                assert_eq!(output.shape(), volume.shape());
                assert_eq!(calls, depth.div_ceil(batch), "depth {depth}, batch {batch}");
                let expected: Vec<f32> = volume.data().iter().map(|v| v + 0.25).collect();
                assert_eq!(output.data(), expected.as_slice(), "depth {depth}, batch {batch}");
            }
        }
    }

    #[test]
    fn a_wrongly_shaped_result_is_an_error() {
        let volume = labelled(4, 2, 2);
        let err = denoise_in_windows(&volume, 3, 2, |b| {
            let [_, s, h, w] = b.shape();
            WindowBatch::new(1, s, h, w, vec![0.0; s * h * w])
        })
        .expect_err("shape mismatch");
        assert!(matches!(err, WindowError::OutputShape { .. }), "{err}");
    }

    #[test]
    fn shapes_are_checked() {
        assert!(Volume::new(2, 2, 2, vec![0.0; 7]).is_err());
        assert!(Volume::new(0, 2, 2, vec![]).is_err());
        assert!(WindowBatch::new(1, 3, 2, 2, vec![0.0; 12]).is_ok());
        assert!(gather_windows(&labelled(2, 1, 1), 3, 1..3).is_err());
        assert_eq!(source_slice(1, 3, 0, 2), 0);
    }
}
