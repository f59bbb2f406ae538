//! The figures of `petal eval nema`: the slice through the spheres in each image, and each
//! sphere's contrast recovery against its size.

use crate::science::canvas::{BLACK, Canvas, Colour};

use super::NemaResults;
use super::measures::sphere_diameters;

pub const NOISELESS_COLOUR: Colour = [128, 128, 128];
pub const OSEM_COLOUR: Colour = [31, 119, 180];
pub const PETAL_COLOUR: Colour = [214, 39, 40];
pub const FILTER_COLOUR: Colour = [44, 160, 44];

/// CRC (0 to 1.1, y) against sphere diameter (5 to 40 mm, x): one panel per count level,
/// with OSEM of noiseless data, OSEM, petal and OSEM filtered to petal's noise.
pub fn crc_plot(results: &NemaResults) -> Result<Vec<u8>, png::EncodingError> {
    let (panel_width, height, left, bottom, margin) = (300i64, 300i64, 50i64, 40i64, 16i64);
    let panels = results.levels.len().max(1) as i64;
    let width = panels * (panel_width + left) + margin;
    let mut canvas = Canvas::new(width as usize, height as usize);
    let (x0, x1, y0, y1) = (5.0, 40.0, 0.0, 1.1);
    for (p, level) in results.levels.iter().enumerate() {
        let plot_left = margin + p as i64 * (panel_width + left) + left;
        let (plot_right, plot_top, plot_bottom) = (plot_left + panel_width - margin, margin, height - bottom);
        let px = |x: f64| plot_left + ((x - x0) / (x1 - x0) * (plot_right - plot_left) as f64).round() as i64;
        let py = |y: f64| plot_bottom - ((y - y0) / (y1 - y0) * (plot_bottom - plot_top) as f64).round() as i64;
        let grid_colour = [225, 225, 225];
        for tick in [10.0, 20.0, 30.0, 40.0] {
            canvas.line((px(tick), plot_top), (px(tick), plot_bottom), grid_colour);
            canvas.text((px(tick) - 8, plot_bottom + 8), &format!("{tick:.0}"), BLACK, 2);
        }
        for tick in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0] {
            canvas.line((plot_left, py(tick)), (plot_right, py(tick)), grid_colour);
            canvas.text((plot_left - 34, py(tick) - 5), &format!("{tick:.1}"), BLACK, 2);
        }
        canvas.frame((plot_left, plot_top), plot_right - plot_left + 1, plot_bottom - plot_top + 1, BLACK);
        canvas.text((plot_right - 40, plot_top + 6), &format!("{:.0}", level.fraction * 100.0), BLACK, 2);
        let series = [
            (&results.noiseless_osem.crc, NOISELESS_COLOUR),
            (&level.osem.mean.crc, OSEM_COLOUR),
            (&level.matched_filter.mean.crc, FILTER_COLOUR),
            (&level.petal.mean.crc, PETAL_COLOUR),
        ];
        for (crc, colour) in series {
            let points: Vec<(i64, i64)> = sphere_diameters()
                .iter()
                .zip(crc.iter())
                .filter(|(_, c)| c.is_finite())
                .map(|(d, c)| (px(*d), py(c.clamp(y0, y1))))
                .collect();
            for pair in points.windows(2) {
                for offset in [-1, 0, 1] {
                    canvas.line((pair[0].0, pair[0].1 + offset), (pair[1].0, pair[1].1 + offset), colour);
                }
            }
            for (x, y) in points {
                canvas.fill((x - 3, y - 3), 7, 7, colour);
            }
        }
    }
    canvas.png()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::science::evaluation::nema::measures::NemaMeasures;
    use crate::science::evaluation::nema::{Averaged, CountLevel};

    fn measures(crc: f64) -> NemaMeasures {
        NemaMeasures {
            crc: vec![crc; 6],
            rc_max: vec![1.0; 6],
            suv_max: vec![4.0; 6],
            suv_peak: vec![4.0; 6],
            rc_a50: vec![1.0; 6],
            false_hot_spots: 0.0,
            background_mean: 1.0,
            background_variability_percent: 5.0,
            background_cov_percent: 10.0,
            lung_residual_percent: 20.0,
        }
    }

    #[test]
    fn each_image_has_its_line_in_each_panel() {
        let averaged = |crc| Averaged { mean: measures(crc), suv_max_repeatability_percent: vec![1.0; 6] };
        let level = CountLevel {
            fraction: 1.0,
            osem: averaged(0.5),
            petal: averaged(0.6),
            matched_filter_fwhm_mm: 5.0,
            matched_filter: averaged(0.3),
        };
        let results = NemaResults {
            model_sha256: "ab".into(),
            strength: crate::domain::DenoiseStrength::STANDARD,
            contrast: 4.0,
            realizations: 2,
            voxel_mm: [4.0, 4.0, 3.0],
            fwhm_mm: 6.0,
            reconstruction: "OSEM".into(),
            noiseless_osem: measures(0.8),
            false_hot_spot_level: 1.3,
            levels: vec![level.clone(), level],
        };
        let png = crc_plot(&results).expect("png");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("header");
        let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
        reader.next_frame(&mut buffer).expect("frame");
        let count = |colour: Colour| buffer.chunks_exact(3).filter(|p| *p == colour).count();
        for colour in [NOISELESS_COLOUR, OSEM_COLOUR, PETAL_COLOUR, FILTER_COLOUR] {
            assert!(count(colour) > 2 * 6 * 49, "{colour:?}: markers and lines in both panels");
        }
    }
}
