//! Pixel data of a stored instance: decoded (native, RLE and deflated syntaxes) into frames
//! of raw bytes for WADO-RS frames, and into physical values (stored value × slope +
//! intercept) for rendering and, later, denoising.

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;

use super::InstanceError;

/// Decoded frames of one instance, with what is needed to interpret them.
#[derive(Debug, Clone)]
pub struct Frames {
    pub rows: u32,
    pub columns: u32,
    pub count: u32,
    pub bits_allocated: u16,
    pub samples_per_pixel: u16,
    pub signed: bool,
    pub rescale_slope: f64,
    pub rescale_intercept: f64,
    /// All frames, native little-endian, one after the other.
    data: Vec<u8>,
}

impl Frames {
    /// Parses a stored Part 10 file and decodes its pixel data.
    pub fn decode(part10: &[u8]) -> Result<(Self, DefaultDicomObject), InstanceError> {
        let object = OpenFileOptions::new()
            .from_reader(super::header::strip_preamble(part10))
            .map_err(|e| InstanceError::undecodable("", e))?;
        let decoded = object.decode_pixel_data().map_err(|e| InstanceError::undecodable("pixel data: ", e))?;
        let number = |tag| {
            object.get(tag).and_then(|e| e.to_str().ok()).and_then(|v| v.trim().split('\\').next()?.trim().parse().ok())
        };
        let frames = Frames {
            rows: decoded.rows(),
            columns: decoded.columns(),
            count: decoded.number_of_frames(),
            bits_allocated: decoded.bits_allocated(),
            samples_per_pixel: decoded.samples_per_pixel(),
            signed: matches!(decoded.pixel_representation(), dicom_pixeldata::PixelRepresentation::Signed),
            rescale_slope: number(tags::RESCALE_SLOPE).unwrap_or(1.0),
            rescale_intercept: number(tags::RESCALE_INTERCEPT).unwrap_or(0.0),
            data: decoded.data().to_vec(),
        };
        Ok((frames, object))
    }

    fn frame_len(&self) -> usize {
        self.rows as usize
            * self.columns as usize
            * usize::from(self.samples_per_pixel)
            * usize::from(self.bits_allocated.div_ceil(8))
    }

    /// The raw bytes of frame `number` (1-based, as WADO-RS numbers frames).
    pub fn frame_bytes(&self, number: u32) -> Option<&[u8]> {
        if number == 0 || number > self.count {
            return None;
        }
        let len = self.frame_len();
        let start = (number as usize - 1) * len;
        self.data.get(start..start + len)
    }

    /// Physical values (e.g. Bq/ml) of frame `number`, first sample of each pixel.
    pub fn frame_values(&self, number: u32) -> Option<Vec<f64>> {
        let bytes = self.frame_bytes(number)?;
        let step = usize::from(self.bits_allocated.div_ceil(8)) * usize::from(self.samples_per_pixel);
        let value = |chunk: &[u8]| -> f64 {
            match (self.bits_allocated, self.signed) {
                (8, false) => f64::from(chunk[0]),
                (8, true) => f64::from(chunk[0] as i8),
                (16, false) => f64::from(u16::from_le_bytes([chunk[0], chunk[1]])),
                (16, true) => f64::from(i16::from_le_bytes([chunk[0], chunk[1]])),
                (32, false) => f64::from(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])),
                (32, true) => f64::from(i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])),
                _ => 0.0,
            }
        };
        Some(bytes.chunks_exact(step).map(|c| value(c) * self.rescale_slope + self.rescale_intercept).collect())
    }
}
