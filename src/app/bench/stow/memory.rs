//! `--memory N`: posts N instances to petal, series by series, and reads its resident
//! memory after each request: the peak, and whether it stays flat.

use std::time::Instant;

use super::args::StowBenchArgs;
use crate::app::bench::memory::{Flatness, mib};
use crate::app::bench::servers::ServerProcess;

/// petal's resident memory while it ingests `instances` instances.
pub(super) async fn run(args: &StowBenchArgs, petal: &ServerProcess, instances: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = petal.memory()?;
    crate::report!(
        "| instances stored | RSS MiB | of which anonymous | peak RSS MiB |\n|---|---|---|---|\n| 0 | {:.0} | {:.1} | {:.0} |",
        mib(started.rss_kib),
        mib(started.anonymous_kib),
        mib(started.peak_kib)
    );
    let (mut stored, mut samples, mut anonymous_peak) = (0usize, Vec::new(), started.anonymous_kib);
    let clock = Instant::now();
    while stored < instances {
        for request in args.series_requests()? {
            petal.post(&client, request.body).await?;
        }
        stored += args.slices;
        let now = petal.memory()?;
        samples.push(now.rss_kib);
        anonymous_peak = anonymous_peak.max(now.anonymous_kib);
        crate::report!(
            "| {stored} | {:.0} | {:.1} | {:.0} |",
            mib(now.rss_kib),
            mib(now.anonymous_kib),
            mib(now.peak_kib)
        );
    }
    let end = petal.memory()?;
    let flatness = Flatness::of(&samples);
    crate::report!(
        "\n{stored} instances in {:.1} s; peak RSS {:.0} MiB; RSS at the end {:.0} MiB; anonymous RSS at most {:.1} MiB \
         between requests; the second half of the run raised the highest RSS by {:.1} MiB ({})",
        clock.elapsed().as_secs_f64(),
        mib(end.peak_kib),
        mib(end.rss_kib),
        mib(anonymous_peak),
        flatness.growth_mib,
        flatness.verdict()
    );
    Ok(())
}
