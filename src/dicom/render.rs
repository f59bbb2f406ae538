//! Rendering a frame to an 8-bit greyscale PNG through a value window (PS3.18 rendered
//! resources). For PET the window is given in SUV when the header allows it.

/// The value range mapped to black..white; values outside are clipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub low: f64,
    pub high: f64,
}

impl Window {
    /// From a PS3.18 `window=center,width[,function]` parameter (only `linear`).
    pub fn parse(parameter: &str) -> Option<Self> {
        let mut parts = parameter.split(',').map(str::trim);
        let center: f64 = parts.next()?.parse().ok()?;
        let width: f64 = parts.next()?.parse().ok().filter(|w: &f64| *w > 0.0)?;
        match parts.next() {
            None | Some("linear") => Some(Window { low: center - width / 2.0, high: center + width / 2.0 }),
            Some(_) => None,
        }
    }

    /// 0 to the 99.5th percentile of the values: a robust default when no SUV is known.
    pub fn robust(values: &[f64]) -> Self {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let high = sorted.get(sorted.len().saturating_sub(1) * 995 / 1000).copied().unwrap_or(1.0);
        Window { low: 0.0, high: if high > 0.0 { high } else { 1.0 } }
    }
}

/// Encodes `values` (row-major, `rows` × `columns`) as a PNG, scaled down so that neither
/// side exceeds `max_edge` when given.
pub fn png(
    values: &[f64],
    rows: u32,
    columns: u32,
    window: Window,
    max_edge: Option<u32>,
) -> Result<Vec<u8>, png::EncodingError> {
    let scale = max_edge.map_or(1, |edge| rows.max(columns).div_ceil(edge.max(1))).max(1);
    let (out_rows, out_columns) = (rows.div_ceil(scale), columns.div_ceil(scale));
    let span = (window.high - window.low).max(f64::EPSILON);
    let mut pixels = Vec::with_capacity((out_rows * out_columns) as usize);
    for r in 0..out_rows {
        for c in 0..out_columns {
            // Average of the source block, so thumbnails keep small hot spots visible as grey.
            let (mut sum, mut n) = (0.0_f64, 0.0_f64);
            for sr in r * scale..((r + 1) * scale).min(rows) {
                for sc in c * scale..((c + 1) * scale).min(columns) {
                    sum += values.get((sr * columns + sc) as usize).copied().unwrap_or(0.0);
                    n += 1.0;
                }
            }
            let level = ((sum / n.max(1.0) - window.low) / span).clamp(0.0, 1.0);
            pixels.push((level * 255.0).round() as u8);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, out_columns, out_rows);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(&pixels)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_clip() {
        assert_eq!(Window::parse("2.5,5"), Some(Window { low: 0.0, high: 5.0 }));
        assert_eq!(Window::parse("2.5,5,sigmoid"), None);
        assert_eq!(Window::parse("x,5"), None);
        let robust = Window::robust(&(0..1000).map(f64::from).collect::<Vec<_>>());
        assert!((robust.high - 994.0).abs() < 1.0);
    }

    #[test]
    fn png_is_scaled_to_the_maximum_edge() {
        let values: Vec<f64> = (0..200 * 100).map(|i| f64::from(i % 200)).collect();
        let bytes = png(&values, 100, 200, Window { low: 0.0, high: 199.0 }, Some(50)).expect("png");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().expect("valid png");
        assert_eq!((reader.info().width, reader.info().height), (50, 25));
    }
}
