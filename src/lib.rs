//! petal: a clinical PET denoising server that keeps learning each patient.
//!
//! `src/` is laid out by layer, from the bottom up; each may use only those below it
//! (docs/architecture.md; tests/architecture.rs checks it):
//! - [`domain`]: the words every layer shares (roles); [`job_metrics`]: the job side's metrics.
//! - [`science`]: the network, KSE and TGD, training, the PET simulator and the evaluation,
//!   as pure computation on arrays and volumes (no DICOM, database, HTTP or runtime).
//! - [`dicom`]: parsing, validating and writing DICOM; volumes from series.
//! - [`dimse`]: the DICOM network protocol (command sets, messages, the allow-list of
//!   calling nodes, petal as a C-STORE sender).
//! - [`inference`]: the network run through ONNX Runtime on its own thread.
//! - [`storage`]: the database (PostgreSQL or SQLite), the only place with SQL; [`blobs`]:
//!   DICOM instance storage (local directory or S3).
//! - [`auth`]: bearer tokens, sessions, the first admin token.
//! - [`ingest`]: one received instance → blob store → index.
//! - [`jobs`]: the worker loop and every job (denoise, learning rounds).
//! - [`scp`]: the DIMSE surface: C-STORE and C-ECHO received from scanners and PACS.
//! - [`api`]: the HTTP surface (DICOMweb, JSON API, probes, metrics), errors → status codes.
//! - [`app`]: command-line parsing, assembly of the server and worker, offline commands,
//!   benchmarks, logging.

pub mod api;
pub mod app;
pub mod auth;
pub mod blobs;
pub mod dicom;
pub mod dimse;
pub mod domain;
pub mod inference;
pub mod ingest;
pub mod job_metrics;
pub mod jobs;
pub mod science;
pub mod scp;
pub mod storage;

pub use app::Application;
