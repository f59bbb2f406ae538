//! The PET simulator: petal generates its own realistic data, to train the base model, to
//! test the pipeline and online learning end to end, and to reproduce the paper's
//! experiment, where "v1" and "v2" are two versions of an OSEM reconstruction.
//!
//! The path is the physical one: a digital patient ([`phantom`], laid out by [`anatomy`];
//! or the NEMA IEC body phantom, [`nema`]) is projected slice by slice
//! with attenuation and a detector blur, counted with Poisson noise ([`acquisition`]), cut
//! into lower-count data by binomial thinning ([`scan`]), and reconstructed with OSEM in two
//! versions ([`osem`]); so noise has OSEM's texture, not added white noise. Writing whole
//! studies as DICOM PET series with the ground truth happens at the edge, in
//! [`crate::dicom::simulated_study`].

pub mod acquisition;
pub mod anatomy;
pub mod filter;
pub mod nema;
pub mod noise_texture;
pub mod osem;
pub mod phantom;
pub mod projector;
pub mod scan;
pub mod spheres;

pub use crate::science::image::{Grid, Image3};
pub use osem::ReconVersion;
pub use scan::Scan;
