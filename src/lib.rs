//! petal: a clinical PET denoising server that keeps learning each patient.
//!
//! Where things live:
//! - [`api`]: the HTTP surface (DICOMweb, JSON API, probes, metrics), errors → status codes.
//! - [`auth`]: roles, bearer tokens, the first admin token.
//! - [`storage`]: the database (PostgreSQL or SQLite); the only place with SQL.
//! - [`blobs`]: DICOM instance storage (local directory or S3).
//! - [`worker`]: the job worker (embedded in `serve`, or alone as `petal worker`).
//! - [`inference`]: the network run through ONNX Runtime on its own thread, for the worker.
//! - [`simulation`]: the PET simulator (phantom, projection, counts, OSEM, DICOM studies).
//! - [`cli`]: the offline subcommands; [`config`]: every option; [`app`]: server assembly.

pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod blobs;
pub mod cli;
pub mod config;
pub mod dicom;
pub mod evaluation;
pub mod inference;
pub mod ingest;
pub mod learning;
pub mod model;
pub mod pipeline;
pub mod simulation;
pub mod storage;
pub mod telemetry;
pub mod training;
pub mod worker;

pub use app::Application;
