//! The loss curve of a training run as a PNG: loss (log scale) against step, the raw losses
//! in grey and their running mean in blue. Axes without text; the report gives the ranges.

use super::checkpoint::LossPoint;
use crate::science::canvas::Canvas;

const WIDTH: usize = 640;
const HEIGHT: usize = 320;
const MARGIN: usize = 24;

/// The running mean of the last `window` losses at each point.
pub fn running_mean(points: &[LossPoint], window: usize) -> Vec<LossPoint> {
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            sum += p.loss;
            if i >= window {
                sum -= points[i - window].loss;
            }
            LossPoint { step: p.step, loss: sum / (i + 1).min(window) as f64 }
        })
        .collect()
}

/// Draws the curve; empty or non-positive losses give an empty frame.
pub fn loss_curve_png(points: &[LossPoint]) -> Result<Vec<u8>, png::EncodingError> {
    let mut canvas = Canvas::new(WIDTH, HEIGHT);
    let (left, right, top, bottom) = (MARGIN as i64, (WIDTH - MARGIN) as i64, MARGIN as i64, (HEIGHT - MARGIN) as i64);
    let axis = [0, 0, 0];
    canvas.line((left, bottom), (right, bottom), axis);
    canvas.line((left, bottom), (left, top), axis);
    let positive: Vec<LossPoint> = points.iter().copied().filter(|p| p.loss > 0.0 && p.loss.is_finite()).collect();
    if positive.len() >= 2 {
        let (low, high) =
            positive.iter().fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p.loss.log10()), h.max(p.loss.log10())));
        let span = (high - low).max(1e-9);
        let last_step = positive[positive.len() - 1].step.max(1) as f64;
        let to_pixel = |p: &LossPoint| {
            let x = left + ((p.step as f64 / last_step) * (right - left) as f64) as i64;
            let y = bottom - (((p.loss.log10() - low) / span) * (bottom - top) as f64) as i64;
            (x, y)
        };
        for pair in positive.windows(2) {
            canvas.line(to_pixel(&pair[0]), to_pixel(&pair[1]), [190, 190, 190]);
        }
        let smooth = running_mean(&positive, 50);
        for pair in smooth.windows(2) {
            canvas.line(to_pixel(&pair[0]), to_pixel(&pair[1]), [20, 70, 200]);
        }
    }
    canvas.png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_mean_averages_the_last_values() {
        let points: Vec<LossPoint> =
            [4.0, 2.0, 6.0].iter().enumerate().map(|(i, l)| LossPoint { step: i, loss: *l }).collect();
        let mean: Vec<f64> = running_mean(&points, 2).iter().map(|p| p.loss).collect();
        assert_eq!(mean, vec![4.0, 3.0, 4.0]);
    }

    #[test]
    fn the_curve_is_a_png_with_the_line_drawn() {
        let points: Vec<LossPoint> = (0..100).map(|i| LossPoint { step: i, loss: 1.0 / (1.0 + i as f64) }).collect();
        let bytes = loss_curve_png(&points).expect("png");
        assert_eq!(&bytes[1..4], b"PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("header");
        let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
        reader.next_frame(&mut buffer).expect("frame");
        let blue = buffer.chunks_exact(3).filter(|p| p == &[20, 70, 200]).count();
        assert!(blue > 100, "the running mean is drawn ({blue} pixels)");
    }
}
