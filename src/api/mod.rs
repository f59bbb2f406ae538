//! The HTTP surface: DICOMweb, the admin/clinical JSON API, health and metrics.
//!
//! Handlers read the index, enqueue work and report status; they never run inference or
//! training. Every route is declared once in [`routes::endpoints`] together with the
//! roles it admits and the kind of traffic it carries; the router, the role checks, the
//! time limits and the OpenAPI drift test are all derived from that table.

mod access;
mod audit;
mod destinations;
mod dicomweb;
mod error;
mod extract;
mod health;
mod jobs;
mod models;
mod observability;
mod patients;
mod rounds;
mod router;
pub mod routes;
mod series;
mod session;
mod state;
mod tokens;
mod web;
pub mod worker_endpoint;

pub use error::ApiError;
pub use observability::{HttpMetrics, REQUEST_ID_HEADER};
pub use router::router;
pub use state::{AppState, AuthMode, HttpLimits, SessionSettings, UnknownAuthMode};
