//! petal's main job, from a complete stored PET series to its derived series: when a series
//! is complete ([`completion`]), which model denoises it ([`active_model`]), the `denoise`
//! job ([`denoise_job`]), and the database-free core that `petal denoise` shares
//! ([`denoise_series`]): decode and assemble the volume, normalise, denoise through the
//! inference engine, invert the normalisation exactly, write one derived instance per slice.

pub mod active_model;
pub mod completion;
pub mod denoise_job;
pub mod denoise_series;
pub mod stored_series;
