//! Prometheus metrics of the job side of a process: queue waits, series and inference
//! times. The worker, the denoise job and the inference engine record them; `/metrics`
//! serves them beside the HTTP metrics. Below every layer that records them.

/// Metrics of the job side of a process (its one worker and one inference engine), in the
/// process-wide Prometheus registry; `/metrics` serves them beside the HTTP metrics.
pub struct JobMetrics {
    /// Seconds from a job being ready to a worker claiming it, by kind.
    pub queue_wait: prometheus::HistogramVec,
    /// Seconds to denoise one series and store its derived series.
    pub series_seconds: prometheus::Histogram,
    /// Seconds per inference call (one slab of 3-slice windows).
    pub slab_seconds: prometheus::Histogram,
    /// Forward attempts by destination kind (`dimse`, `dicomweb`) and outcome (`sent`,
    /// `retry`, `failed`).
    pub forwards: prometheus::IntCounterVec,
}

/// The process's job metrics (registered on first use).
pub fn job_metrics() -> &'static JobMetrics {
    static METRICS: std::sync::OnceLock<JobMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        use prometheus::{Histogram, HistogramOpts, HistogramVec};
        let buckets = vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];
        let queue_wait = HistogramVec::new(
            HistogramOpts::new("petal_job_queue_wait_seconds", "Seconds from a job being ready to its claim, by kind.")
                .buckets(buckets.clone()),
            &["kind"],
        );
        let series = Histogram::with_opts(
            HistogramOpts::new(
                "petal_denoise_series_seconds",
                "Seconds to denoise a series and store its derived series.",
            )
            .buckets(buckets.clone()),
        );
        let slab = Histogram::with_opts(
            HistogramOpts::new(
                "petal_inference_slab_seconds",
                "Seconds per inference call (a slab of 3-slice windows).",
            )
            .buckets(buckets),
        );
        let forwards = prometheus::IntCounterVec::new(
            prometheus::Opts::new("petal_forward_total", "Forward attempts, by destination kind and outcome."),
            &["kind", "outcome"],
        );
        // The options are constant and valid, so construction cannot fail; registering twice
        // cannot happen behind the OnceLock.
        let (queue_wait, series, slab, forwards) = match (queue_wait, series, slab, forwards) {
            (Ok(q), Ok(s), Ok(b), Ok(f)) => (q, s, b, f),
            _ => unreachable!("constant metric options are valid"),
        };
        for collector in [
            Box::new(queue_wait.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(series.clone()),
            Box::new(slab.clone()),
            Box::new(forwards.clone()),
        ] {
            if let Err(err) = prometheus::default_registry().register(collector) {
                tracing::warn!(error = %err, "registering a job metric");
            }
        }
        JobMetrics { queue_wait, series_seconds: series, slab_seconds: slab, forwards }
    })
}
