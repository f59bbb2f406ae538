//! `--clients N`: N senders at once, as several scanners or a PACS and a scanner send to
//! one server. In every round each sender posts its own new series to one server while the
//! others post theirs; the servers take turns (the order alternating), so they never compete
//! for the machine. Reports each server's throughput over the round's wall time and the
//! latency of its requests.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::args::{StowBenchArgs, StowRequest, round_label, round_order};
use crate::app::bench::memory::mib;
use crate::app::bench::servers::ServerProcess;

/// What one server did in the counted rounds.
#[derive(Default)]
struct Tally {
    instances: usize,
    seconds: f64,
    latencies: Vec<Duration>,
}

/// Throughput and latencies of each server under `clients` concurrent senders, and their ratio.
pub(super) async fn run(args: &StowBenchArgs, servers: &[&ServerProcess], clients: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut tallies: Vec<Tally> = servers.iter().map(|_| Tally::default()).collect();
    crate::report!(
        "| round | server | clients | instances | requests | seconds | instances/s |\n|---|---|---|---|---|---|---|"
    );
    for round in 1..=args.warmup + args.rounds {
        let senders: Vec<Vec<StowRequest>> =
            (0..clients).map(|_| args.series_requests()).collect::<anyhow::Result<_>>()?;
        let instances: usize = senders.iter().flatten().map(|r| r.instances).sum();
        let requests: usize = senders.iter().map(Vec::len).sum();
        let label = round_label(round, args.warmup);
        for index in round_order(round, servers.len()) {
            let started = Instant::now();
            let latencies = post_concurrently(&client, servers[index], &senders).await?;
            let seconds = started.elapsed().as_secs_f64();
            crate::report!(
                "| {label} | {} | {clients} | {instances} | {requests} | {seconds:.2} | {:.0} |",
                servers[index].name,
                instances as f64 / seconds
            );
            if round > args.warmup {
                let tally = &mut tallies[index];
                tally.instances += instances;
                tally.seconds += seconds;
                tally.latencies.extend(latencies);
            }
        }
    }
    crate::report!(
        "\n(warm-up rounds not counted; latency: one STOW-RS request, first byte sent to response read)\n\n\
         | server | instances/s | requests | p50 request s | p99 request s | peak RSS MiB |\n|---|---|---|---|---|---|"
    );
    let mut rates = Vec::new();
    for (server, tally) in servers.iter().zip(&mut tallies) {
        let rate = tally.instances as f64 / tally.seconds;
        rates.push(rate);
        tally.latencies.sort();
        let peak = server.memory().map(|m| format!("{:.0}", mib(m.peak_kib))).unwrap_or_else(|_| "?".into());
        crate::report!(
            "| {} | {rate:.0} | {} | {:.2} | {:.2} | {peak} |",
            server.name,
            tally.latencies.len(),
            percentile(&tally.latencies, 0.50).as_secs_f64(),
            percentile(&tally.latencies, 0.99).as_secs_f64()
        );
    }
    if let [petal, orthanc] = rates[..] {
        crate::report!(
            "\npetal / Orthanc with {clients} clients: {:.2}× (instances/s, same series, same run)",
            petal / orthanc
        );
    }
    Ok(())
}

/// Each sender posts its requests one after another, all senders at once; returns every
/// request's latency.
async fn post_concurrently(
    client: &reqwest::Client,
    server: &ServerProcess,
    senders: &[Vec<StowRequest>],
) -> anyhow::Result<Vec<Duration>> {
    let mut tasks = tokio::task::JoinSet::new();
    for requests in senders {
        let (client, requests) = (client.clone(), requests.clone());
        let target = server.target();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(requests.len());
            for request in requests {
                let started = Instant::now();
                target.post(&client, request.body).await?;
                latencies.push(started.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined.context("a sender stopped")??);
    }
    Ok(latencies)
}

/// The nearest-rank percentile `p` (0–1] of sorted `values`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&values, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..3], 0.99), Duration::from_millis(3));
        assert_eq!(percentile(&values[..1], 0.50), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
