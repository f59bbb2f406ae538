//! Training the network on burn: which parameters a round may change ([`update_plan`]:
//! TGD layer semantics, the parameter-mask variant, FT-net's last layers) and the
//! optimisation step itself ([`trainer`]). Knows nothing of HTTP, the database or DICOM.

/// Patches per training step in a round (default).
pub const DEFAULT_BATCH: usize = 16;
/// Side of the square training patches (the paper: 32).
pub const DEFAULT_PATCH: usize = 32;

pub mod base;
pub mod error_estimate;
pub mod fine_tune;
pub mod gate;
pub mod hot_spots;
pub mod n2n_round;
pub mod pair_source;
pub mod round_control;
pub mod round_settings;
pub mod tgd_passes;
pub mod trainer;
pub mod update_plan;

#[cfg(test)]
mod tests;
