//! petal's main job, from a stored PET series to its derived series, without the database:
//! decode and assemble the volume, normalise, denoise through the inference engine, invert
//! the normalisation exactly, and write one derived instance per source slice. The denoise
//! job handler and `petal denoise` both run this.

pub mod completion;
pub mod denoise_job;
pub mod denoise_series;
