//! Request tracing and Prometheus metrics.
//!
//! Spans and metrics carry the method, the *matched* route (`/api/v1/patients/{patient_key}`)
//! and the request id, never the query string: QIDO queries can hold PatientID or
//! PatientName, which must not reach the logs.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, MakeSpan, TraceLayer};
use tracing::{Level, Span};

/// Header carrying the request id, generated when the client sends none.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// HTTP metrics of one server instance (own registry, so tests can run several servers).
#[derive(Debug)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Jobs in the shared queue by kind and state, read from the database at each scrape.
    jobs: IntGaugeVec,
}

impl HttpMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("petal_http_requests_total", "HTTP requests by method, matched route and status."),
            &["method", "path", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "petal_http_request_duration_seconds",
                "HTTP request latency by method and matched route.",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0]),
            &["method", "path"],
        )?;
        let jobs = IntGaugeVec::new(
            Opts::new("petal_jobs", "Jobs in the shared queue by kind and state."),
            &["kind", "state"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        Ok(HttpMetrics { registry, requests, latency, jobs })
    }

    /// The registry, for other parts (jobs, inference) to add their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything [`Self::render`] gives, with the job gauge first set to the shared queue's
    /// counts (a failed read is logged and leaves the gauge as it was).
    pub async fn render_with_queue(&self, db: &crate::storage::Database) -> String {
        match crate::storage::jobs::counts(db).await {
            Ok(counts) => self.set_job_counts(&counts),
            Err(err) => tracing::warn!(error = %err, "reading job counts for the metrics"),
        }
        // The job metrics exist (at zero) from the first scrape, even before any job ran.
        let _ = crate::job_metrics::job_metrics();
        self.render()
    }

    /// Sets the job gauge to the queue's current counts.
    fn set_job_counts(&self, counts: &[(String, String, i64)]) {
        self.jobs.reset();
        for (kind, state, count) in counts {
            self.jobs.with_label_values(&[kind.as_str(), state.as_str()]).set(*count);
        }
    }

    /// Prometheus text exposition of this server's metrics and the process's job metrics.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let mut families = self.registry.gather();
        families.extend(prometheus::default_registry().gather());
        // Encoding into a Vec cannot fail for well-formed metric families.
        if let Err(err) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::warn!(error = %err, "encoding metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// Middleware (route layer, so the matched path is known): counts and times requests.
pub async fn track_metrics(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics.requests.with_label_values(&[&method, &path, &status]).inc();
    metrics.latency.with_label_values(&[&method, &path]).observe(started.elapsed().as_secs_f64());
    response
}

/// A span per request with method, route and request id.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        let request_id = request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
        let route =
            request.extensions().get::<MatchedPath>().map(|p| p.as_str()).unwrap_or_else(|| request.uri().path());
        tracing::info_span!("request", method = %request.method(), route = %route, request_id = %request_id)
    }
}

pub fn trace_layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, DefaultOnRequest> {
    TraceLayer::new_for_http().make_span_with(RequestSpan).on_request(DefaultOnRequest::new().level(Level::DEBUG))
}
