//! The HTTP surface: DICOMweb, the admin/clinical JSON API, health and metrics.
//!
//! Handlers read the index, enqueue work and report status; they never run inference or
//! training. Every route is declared once in [`routes::endpoints`] together with the
//! roles it admits and the kind of traffic it carries; the router, the role checks, the
//! time limits and the OpenAPI drift test are all derived from that table.

mod access;
mod audit;
mod dicomweb;
mod error;
mod extract;
mod health;
mod jobs;
mod models;
mod observability;
mod patients;
mod rounds;
pub mod routes;
mod series;
mod session;
mod tokens;
mod web;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use observability::HttpMetrics;

use crate::blobs::BlobStore;
use crate::config::AuthMode;
use crate::inference::InferenceContext;
use crate::storage::Database;
use routes::{Access, Traffic};

/// Header carrying the request id, generated when the client sends none.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    pub blobs: BlobStore,
    pub auth: AuthMode,
    pub metrics: Arc<HttpMetrics>,
    /// Whether this process runs jobs (so `/readyz` checks what inference needs).
    pub runs_worker: bool,
    /// The inference engine and base model of a process that runs jobs (reported by `/readyz`).
    pub inference: InferenceContext,
    /// Largest upload (STOW-RS) body; uploads enforce it themselves while streaming.
    pub upload_body_limit: u64,
    /// Which series are training material rather than images to denoise (noted at ingest).
    pub series_rules: crate::dicom::series_kind::DescriptionRules,
    /// Round defaults and the quiet period, for round requests.
    pub learning: crate::learning::LearningSettings,
    /// Web-page sessions: lifetime and cookie flags.
    pub sessions: crate::config::SessionArgs,
}

/// Limits that differ by kind of traffic.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub request_timeout: Duration,
    pub json_body_limit: usize,
}

/// Builds the whole router from the endpoint table.
pub fn router(state: AppState, limits: &HttpLimits) -> Router {
    let mut router = Router::new();
    for endpoint in routes::endpoints() {
        let mut handler = endpoint.handler;
        handler = match endpoint.traffic {
            Traffic::Json | Traffic::Probe => {
                handler.layer::<_, Infallible>(DefaultBodyLimit::max(limits.json_body_limit)).layer::<_, Infallible>(
                    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout),
                )
            }
            // Uploads and downloads may legitimately take long; they enforce their own size limit.
            Traffic::Upload | Traffic::Download => handler.layer::<_, Infallible>(DefaultBodyLimit::disable()),
        };
        if let Access::Roles(roles) = endpoint.access {
            handler = handler.route_layer(middleware::from_fn_with_state(
                access::Gate { state: state.clone(), roles },
                access::require_role,
            ));
        }
        router = router.route(endpoint.path, handler);
    }
    router
        .route_layer(middleware::from_fn_with_state(state.metrics.clone(), observability::track_metrics))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(observability::trace_layer())
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(middleware::from_fn(error::render_errors))
                .layer(middleware::from_fn(extract::reject_nul_in_uri)),
        )
        .with_state(state)
}
