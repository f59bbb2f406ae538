//! One sender: each round posts a new series to each server in turn (the servers' order
//! alternating), request after request, and times it.

use std::time::Instant;

use super::args::{StowBenchArgs, StowRequest, round_label, round_order};
use crate::app::bench::memory::mib;
use crate::app::bench::servers::ServerProcess;

/// Instances/s of each server on the same series, and their ratio.
pub(super) async fn run(args: &StowBenchArgs, servers: &[&ServerProcess]) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut totals = vec![(0usize, 0.0f64, 0.0f64); servers.len()];
    crate::report!("| round | server | instances | MB | seconds | instances/s | MB/s |\n|---|---|---|---|---|---|---|");
    for round in 1..=args.warmup + args.rounds {
        let requests = args.series_requests()?;
        let megabytes = StowRequest::megabytes(&requests);
        let label = round_label(round, args.warmup);
        for index in round_order(round, servers.len()) {
            let server = servers[index];
            let started = Instant::now();
            for request in &requests {
                server.post(&client, request.body.clone()).await?;
            }
            let seconds = started.elapsed().as_secs_f64();
            crate::report!(
                "| {label} | {} | {} | {megabytes:.1} | {seconds:.2} | {:.0} | {:.1} |",
                server.name,
                args.slices,
                args.slices as f64 / seconds,
                megabytes / seconds
            );
            if round > args.warmup {
                let total = &mut totals[index];
                *total = (total.0 + args.slices, total.1 + megabytes, total.2 + seconds);
            }
        }
    }
    crate::report!(
        "\n(warm-up rounds not counted)\n\n| server | instances/s | MB/s | peak RSS MiB |\n|---|---|---|---|"
    );
    let mut rates = Vec::new();
    for (server, (instances, megabytes, seconds)) in servers.iter().zip(&totals) {
        let rate = *instances as f64 / seconds;
        rates.push(rate);
        let peak = server.memory().map(|m| format!("{:.0}", mib(m.peak_kib))).unwrap_or_else(|_| "?".into());
        crate::report!("| {} | {rate:.0} | {:.1} | {peak} |", server.name, megabytes / seconds);
    }
    if let [petal, orthanc] = rates[..] {
        crate::report!("\npetal / Orthanc: {:.2}× (instances/s, same series, same run)", petal / orthanc);
    }
    Ok(())
}
