//! The evaluation's PNG figures: the same slice through the liver lesion from every
//! network on both data versions, lesion bias against liver CoV (petal's points and the
//! paper's), and the KSE sweep's outputs with the flagged kernels dropped (Fig. 4).

use super::scores::Scores;
use crate::science::canvas::{BLACK, Canvas, Colour};

const GAP: usize = 8;

/// The colour each network is drawn in (the report's legend names them).
pub fn colour_of(network: &str) -> Colour {
    match network {
        "v1-net" => [31, 119, 180],
        "v2-net" => [255, 127, 14],
        "FT-net" => [44, 160, 44],
        "TGD-net" => [214, 39, 40],
        "TGD_N2N-net" => [148, 103, 189],
        "TGD²_N2N-net" => [140, 86, 75],
        _ => [127, 127, 127],
    }
}

/// Rows of equally sized grey-scale slices (`size`×`size`), each row with its own window
/// (0 to 60 % of the row's first image's maximum, so organs show beside a hot lesion),
/// drawn at a zoom that makes them ≈ 192 pixels.
pub fn slice_grid(rows: &[Vec<&[f32]>], size: usize) -> Result<Vec<u8>, png::EncodingError> {
    let zoom = (192 / size.max(1)).max(1);
    let side = size * zoom;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut canvas = Canvas::new(GAP + columns * (side + GAP), GAP + rows.len() * (side + GAP));
    for (r, row) in rows.iter().enumerate() {
        let high = 0.6 * row.first().map_or(1.0, |first| first.iter().fold(0.0f32, |m, v| m.max(*v)));
        for (c, values) in row.iter().enumerate() {
            let origin = ((GAP + c * (side + GAP)) as i64, (GAP + r * (side + GAP)) as i64);
            canvas.grey_image(origin, values, size, (0.0, high), zoom);
        }
    }
    canvas.png()
}

/// Tick positions: a round step giving about five ticks over [low, high].
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let raw = (high - low).max(1e-9) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(magnitude * 10.0);
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// One marker of the bias/CoV plot.
pub struct Point<'a> {
    pub network: &'a str,
    pub cov: f64,
    pub bias: f64,
    pub style: Marker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// petal, v2 test data.
    Filled,
    /// petal, v1 test data.
    Hollow,
    /// the paper's Table 1.
    Cross,
}

/// Lesion bias (%, y) against liver CoV (%, x), with numbered axes and a dashed zero line.
pub fn bias_cov_plot(points: &[Point<'_>]) -> Result<Vec<u8>, png::EncodingError> {
    let (width, height, left, bottom, margin) = (720i64, 480i64, 70i64, 50i64, 20i64);
    let mut canvas = Canvas::new(width as usize, height as usize);
    let finite: Vec<&Point<'_>> = points.iter().filter(|p| p.cov.is_finite() && p.bias.is_finite()).collect();
    let (mut x0, mut x1) = finite.iter().fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p.cov), h.max(p.cov)));
    let (mut y0, mut y1) = finite.iter().fold((0.0f64, 0.0f64), |(l, h), p| (l.min(p.bias), h.max(p.bias)));
    if finite.is_empty() {
        (x0, x1) = (0.0, 1.0);
    }
    let (pad_x, pad_y) = (((x1 - x0) * 0.1).max(0.5), ((y1 - y0) * 0.1).max(0.5));
    (x0, x1, y0, y1) = ((x0 - pad_x).max(0.0), x1 + pad_x, y0 - pad_y, y1 + pad_y);
    let (plot_left, plot_right, plot_top, plot_bottom) = (left, width - margin, margin, height - bottom);
    let px = |x: f64| plot_left + ((x - x0) / (x1 - x0) * (plot_right - plot_left) as f64).round() as i64;
    let py = |y: f64| plot_bottom - ((y - y0) / (y1 - y0) * (plot_bottom - plot_top) as f64).round() as i64;
    let grid_colour = [225, 225, 225];
    for tick in ticks(x0, x1) {
        canvas.line((px(tick), plot_top), (px(tick), plot_bottom), grid_colour);
        let label = format_tick(tick);
        canvas.text((px(tick) - label.len() as i64 * 4, plot_bottom + 8), &label, BLACK, 2);
    }
    for tick in ticks(y0, y1) {
        canvas.line((plot_left, py(tick)), (plot_right, py(tick)), grid_colour);
        let label = format_tick(tick);
        canvas.text((plot_left - 8 - label.len() as i64 * 8, py(tick) - 5), &label, BLACK, 2);
    }
    let mut x = plot_left;
    while x < plot_right {
        canvas.line((x, py(0.0)), ((x + 5).min(plot_right), py(0.0)), [120, 120, 120]);
        x += 10;
    }
    canvas.frame((plot_left, plot_top), plot_right - plot_left + 1, plot_bottom - plot_top + 1, BLACK);
    for point in finite {
        let (cx, cy) = (px(point.cov), py(point.bias));
        let colour = colour_of(point.network);
        match point.style {
            Marker::Filled => canvas.fill((cx - 5, cy - 5), 11, 11, colour),
            Marker::Hollow => {
                canvas.frame((cx - 5, cy - 5), 11, 11, colour);
                canvas.frame((cx - 4, cy - 4), 9, 9, colour);
            }
            Marker::Cross => {
                for offset in [-1, 0, 1] {
                    canvas.line((cx - 6, cy - 6 + offset), (cx + 6, cy + 6 + offset), colour);
                    canvas.line((cx - 6, cy + 6 + offset), (cx + 6, cy - 6 + offset), colour);
                }
            }
        }
    }
    canvas.png()
}

fn format_tick(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 { format!("{value:.0}") } else { format!("{value:.1}") }
}

/// The sample slices of `scores` in the given order.
pub fn samples<'a>(
    scores: &'a [Scores],
    order: &[&str],
    data: crate::science::simulation::ReconVersion,
) -> Vec<&'a [f32]> {
    order
        .iter()
        .filter_map(|name| scores.iter().find(|s| s.network == *name && s.data == data))
        .map(|s| s.sample_slice.as_slice())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(-7.3, 1.2), vec![-6.0, -4.0, -2.0, 0.0]);
    }

    #[test]
    fn the_plot_draws_each_network_in_its_colour() {
        let points = [
            Point { network: "TGD-net", cov: 6.5, bias: -3.8, style: Marker::Filled },
            Point { network: "v1-net", cov: 6.0, bias: -6.3, style: Marker::Cross },
        ];
        let png = bias_cov_plot(&points).expect("png");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("header");
        let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
        reader.next_frame(&mut buffer).expect("frame");
        let count = |colour: Colour| buffer.chunks_exact(3).filter(|p| *p == colour).count();
        assert_eq!(count(colour_of("TGD-net")), 121, "a filled 11×11 square");
        assert!(count(colour_of("v1-net")) > 20, "a cross");
    }
}
