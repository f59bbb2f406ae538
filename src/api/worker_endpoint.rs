//! The HTTP endpoint of a `petal worker` process (`--metrics-listen`): `/metrics` with the
//! job metrics of this process (queue wait, seconds per series and per slab) and the shared
//! queue's jobs by kind and state, and `/healthz`, for Prometheus and Kubernetes probes on
//! GPU workers, which serve no API.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::api::HttpMetrics;
use crate::storage::Database;

#[derive(Clone)]
struct EndpointState {
    db: Database,
    metrics: Arc<HttpMetrics>,
}

async fn render_metrics(State(state): State<EndpointState>) -> impl IntoResponse {
    let text = state.metrics.render_with_queue(&state.db).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Binds `address` and serves until `stop` turns true; returns the bound address.
pub async fn serve(
    address: SocketAddr,
    db: Database,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let metrics = Arc::new(HttpMetrics::new().context("registering metrics")?);
    let router = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .with_state(EndpointState { db, metrics });
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    tracing::info!(address = %bound, "worker metrics endpoint");
    let task = tokio::spawn(async move {
        let shutdown = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(err) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::warn!(error = %err, "the worker metrics endpoint stopped");
        }
    });
    Ok((bound, task))
}
