//! Prometheus metrics of the DIMSE service provider, in the process-wide registry that
//! `/metrics` serves beside the HTTP metrics.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

/// What the DIMSE listener counts.
pub struct DimseMetrics {
    /// Association requests by outcome: `accepted`, `rejected` (AE title or address not
    /// allowed), `busy` (too many at once), `failed` (broken before acceptance).
    pub associations: IntCounterVec,
    /// Associations open now.
    pub active: IntGauge,
    /// C-STORE requests by the status class petal answered, and `dropped` for non-PET
    /// objects of a PET/CT study, answered success and not stored.
    pub stores: IntCounterVec,
    /// Bytes of data sets received in C-STORE requests.
    pub received_bytes: IntCounter,
}

/// The process's DIMSE metrics (registered on first use).
pub fn dimse_metrics() -> &'static DimseMetrics {
    static METRICS: std::sync::OnceLock<DimseMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        let associations = IntCounterVec::new(
            Opts::new("petal_dimse_associations_total", "DIMSE association requests, by outcome."),
            &["outcome"],
        );
        let active = IntGauge::new("petal_dimse_associations_active", "DIMSE associations open now.");
        let stores = IntCounterVec::new(
            Opts::new("petal_dimse_cstore_total", "C-STORE requests, by the status petal answered."),
            &["status"],
        );
        let received = IntCounter::new("petal_dimse_received_bytes_total", "Bytes of data sets received by C-STORE.");
        let (Ok(associations), Ok(active), Ok(stores), Ok(received_bytes)) = (associations, active, stores, received)
        else {
            unreachable!("the DIMSE metric definitions are valid")
        };
        let registry = prometheus::default_registry();
        for collector in [
            Box::new(associations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(active.clone()),
            Box::new(stores.clone()),
            Box::new(received_bytes.clone()),
        ] {
            if let Err(err) = registry.register(collector) {
                tracing::warn!(error = %err, "a DIMSE metric could not be registered");
            }
        }
        DimseMetrics { associations, active, stores, received_bytes }
    })
}

/// The label a C-STORE status is counted under.
pub fn status_label(code: u16) -> &'static str {
    match code {
        0x0000 => "success",
        0xB000..=0xBFFF => "warning",
        0xA700..=0xA7FF => "out_of_resources",
        0xA900..=0xA9FF => "does_not_match_sop_class",
        0xC000..=0xCFFF => "cannot_understand",
        _ => "failure",
    }
}
