//! The whole router, built from the endpoint table ([`super::routes`]): limits and time-outs
//! by kind of traffic, role checks, metrics, request ids, tracing and error rendering.

use std::convert::Infallible;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use super::routes::{self, Access, Traffic};
use super::state::{AppState, HttpLimits};
use super::{access, error, extract, observability};

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
