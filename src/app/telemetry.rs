//! Logging set-up: `tracing` to stderr, as text or JSON lines. (The job side's Prometheus
//! metrics are in [`crate::job_metrics`], below every layer that records them.)

use tracing_subscriber::EnvFilter;

use crate::app::config::{LogArgs, LogFormat};

pub fn init(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|err| {
        eprintln!("petal: ignoring log filter `{}` ({err}); using `info`", args.log);
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
