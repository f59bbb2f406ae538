//! A small RGB canvas for the figures petal writes (loss curves, the paper evaluation's
//! slices and plots): points, lines, filled boxes, grey-scale images, numbers in a 3×5 pixel
//! font, and PNG encoding. No font files and no plotting crate: figures stay reproducible
//! byte for byte on any machine.
//!
//! ```
//! use petal::science::canvas::Canvas;
//! let mut canvas = Canvas::new(40, 20);
//! canvas.line((0, 0), (39, 19), [0, 0, 255]);
//! canvas.text((2, 2), "-6.3", [0, 0, 0], 1);
//! let png = canvas.png().expect("encoded");
//! assert_eq!(&png[1..4], b"PNG");
//! ```

pub type Colour = [u8; 3];

pub const WHITE: Colour = [255, 255, 255];
pub const BLACK: Colour = [0, 0, 0];

/// Pixels, row by row, top row first.
#[derive(Debug, Clone)]
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<Colour>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, pixels: vec![WHITE; width * height] }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The colour at (`x`, `y`), if inside.
    pub fn get(&self, x: usize, y: usize) -> Option<Colour> {
        (x < self.width && y < self.height).then(|| self.pixels[y * self.width + x])
    }

    /// Sets one pixel; points outside are ignored.
    pub fn set(&mut self, x: i64, y: i64, colour: Colour) {
        if (0..self.width as i64).contains(&x) && (0..self.height as i64).contains(&y) {
            self.pixels[y as usize * self.width + x as usize] = colour;
        }
    }

    /// Bresenham's line.
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), colour: Colour) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut error) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, colour);
            if x == x1 && y == y1 {
                break;
            }
            let doubled = 2 * error;
            if doubled >= dy {
                error += dy;
                x += sx;
            }
            if doubled <= dx {
                error += dx;
                y += sy;
            }
        }
    }

    /// A filled box with its top-left corner at (`x`, `y`).
    pub fn fill(&mut self, (x, y): (i64, i64), width: i64, height: i64, colour: Colour) {
        for row in y..y + height {
            for column in x..x + width {
                self.set(column, row, colour);
            }
        }
    }

    /// The outline of a box.
    pub fn frame(&mut self, (x, y): (i64, i64), width: i64, height: i64, colour: Colour) {
        let (right, bottom) = (x + width - 1, y + height - 1);
        self.line((x, y), (right, y), colour);
        self.line((x, bottom), (right, bottom), colour);
        self.line((x, y), (x, bottom), colour);
        self.line((right, y), (right, bottom), colour);
    }

    /// A `columns`-wide grey-scale image, values mapped linearly from [`low`, `high`] to
    /// black..white, each pixel drawn as a `zoom`×`zoom` block.
    pub fn grey_image(&mut self, (x, y): (i64, i64), values: &[f32], columns: usize, window: (f32, f32), zoom: usize) {
        let (low, high) = window;
        let span = (high - low).max(f32::EPSILON);
        let zoom = zoom.max(1) as i64;
        for (index, value) in values.iter().enumerate() {
            let level = (((value - low) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
            let (column, row) = ((index % columns.max(1)) as i64, (index / columns.max(1)) as i64);
            self.fill((x + column * zoom, y + row * zoom), zoom, zoom, [level; 3]);
        }
    }

    /// Writes `text` (digits, `-`, `.`, `%`, `+` and space) in a 3×5 font scaled by `scale`.
    pub fn text(&mut self, (x, y): (i64, i64), text: &str, colour: Colour, scale: i64) {
        let scale = scale.max(1);
        for (i, character) in text.chars().enumerate() {
            let origin = x + i as i64 * 4 * scale;
            for (row, bits) in glyph(character).iter().enumerate() {
                for column in 0..3 {
                    if bits & (0b100 >> column) != 0 {
                        self.fill((origin + column * scale, y + row as i64 * scale), scale, scale, colour);
                    }
                }
            }
        }
    }

    /// The canvas as an 8-bit RGB PNG.
    pub fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels.concat())?;
        writer.finish()?;
        Ok(bytes)
    }
}

/// Rows of a 3×5 glyph, the high bit on the left; unknown characters are blank.
fn glyph(character: char) -> [u8; 5] {
    match character {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b011, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '+' => [0b000, 0b010, 0b111, 0b010, 0b000],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        '%' => [0b101, 0b001, 0b010, 0b100, 0b101],
        _ => [0; 5],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grey_image_maps_its_window_to_black_and_white() {
        let mut canvas = Canvas::new(4, 2);
        canvas.grey_image((0, 0), &[0.0, 10.0], 2, (0.0, 10.0), 2);
        assert_eq!(canvas.get(0, 0), Some([0; 3]));
        assert_eq!(canvas.get(1, 1), Some([0; 3]));
        assert_eq!(canvas.get(2, 0), Some([255; 3]));
        assert_eq!(canvas.get(3, 1), Some([255; 3]));
    }

    #[test]
    fn text_draws_the_glyphs_pixels() {
        let mut canvas = Canvas::new(8, 5);
        canvas.text((0, 0), "1-", BLACK, 1);
        // "1": the middle column is set in every row.
        assert!((0..5).all(|row| canvas.get(1, row) == Some(BLACK)));
        // "-": only the middle row of the second glyph.
        assert_eq!(canvas.get(4, 2), Some(BLACK));
        assert_eq!(canvas.get(4, 0), Some(WHITE));
    }
}
