//! `petal bench stow`: STOW-RS ingest. Starts petal (its own `serve` process, API only, on
//! a fresh database) and, with `--orthanc`, Orthanc 1.10 with its DICOMweb plugin, and posts
//! the same synthetic PET series to each (a new series per round, the servers' order
//! alternating), timing each request end to end: instances/s for each and their ratio,
//! measured in one run. `--memory N` instead posts N instances to petal series by series and
//! reads its resident memory after each request: the peak, and whether it stays flat.

use std::time::Instant;

use anyhow::Context;

use super::servers::{ScratchFolder, ServerProcess, multipart_body};
use crate::dicom::synthetic::SeriesSpec;

#[derive(Debug, Clone, clap::Args)]
pub struct StowBenchArgs {
    /// Slices per series.
    #[arg(long, default_value_t = 300)]
    pub slices: usize,
    /// Rows and columns of each slice.
    #[arg(long, default_value_t = 192)]
    pub size: u16,
    /// Series posted to each server, one request each, and counted.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Rounds before the counted ones (page cache, connections, allocators warm up); their
    /// rows are printed and marked, never counted.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// petal's database; a fresh SQLite file in a temporary folder by default.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Post the same series to Orthanc (Debian's orthanc and orthanc-dicomweb) too.
    #[arg(long)]
    pub orthanc: bool,
    /// Also send each round's series by C-STORE (dcmtk storescu, one association) to petal's
    /// and, with --orthanc, Orthanc's DICOM port.
    #[arg(long)]
    pub dimse: bool,
    /// Memory instead of speed: post this many instances to petal and follow its RSS.
    #[arg(long)]
    pub memory: Option<usize>,
}

const BOUNDARY: &str = "petal-bench-boundary";

/// A new synthetic series as one STOW body.
fn series_body(args: &StowBenchArgs) -> anyhow::Result<Vec<u8>> {
    let series = SeriesSpec { rows: args.size, columns: args.size, ..SeriesSpec::new(args.slices) };
    Ok(multipart_body(&series.instances().context("writing the synthetic series")?, BOUNDARY))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub async fn run(args: &StowBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.slices > 0 && args.rounds > 0, "--slices and --rounds must be positive");
    let dir = ScratchFolder::new("petal-bench-stow")?;
    let flags = match args.memory {
        Some(n) => format!("--memory {n}"),
        None => format!(
            "--rounds {} --warmup {}{}{}",
            args.rounds,
            args.warmup,
            if args.orthanc { " --orthanc" } else { "" },
            if args.dimse { " --dimse" } else { "" }
        ),
    };
    crate::report!("petal bench stow --slices {} --size {} {flags}", args.slices, args.size);
    crate::report!(
        "date: {}; machine: {}; petal's database: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        super::machine(),
        if args.database_url.is_some() { "given" } else { "SQLite (temporary)" }
    );
    let petal_dir = dir.path().join("petal");
    std::fs::create_dir_all(&petal_dir)?;
    let petal = ServerProcess::petal(&petal_dir, args.database_url.as_deref(), args.dimse).await?;
    match args.memory {
        Some(instances) => memory(args, &petal, instances).await,
        None => {
            let orthanc = if args.orthanc {
                let orthanc_dir = dir.path().join("orthanc");
                std::fs::create_dir_all(&orthanc_dir)?;
                Some(ServerProcess::orthanc(&orthanc_dir, args.dimse).await?)
            } else {
                None
            };
            let servers: Vec<&ServerProcess> = std::iter::once(&petal).chain(orthanc.as_ref()).collect();
            throughput(args, &servers).await?;
            if args.dimse {
                cstore_throughput(args, &servers, &dir.path().join("cstore"))?;
            }
            Ok(())
        }
    }
}

/// Instances/s of each server receiving the same series by C-STORE, and their ratio.
fn cstore_throughput(args: &StowBenchArgs, servers: &[&ServerProcess], dir: &std::path::Path) -> anyhow::Result<()> {
    crate::report!(
        "\nBy C-STORE (dcmtk storescu, one association per series, storescu's start included):\n\n\
         | round | server | instances | seconds | instances/s |\n|---|---|---|---|---|"
    );
    let mut totals = vec![(0usize, 0.0f64); servers.len()];
    for round in 1..=args.rounds {
        let series = SeriesSpec { rows: args.size, columns: args.size, ..SeriesSpec::new(args.slices) };
        let folder = dir.join(format!("round-{round}"));
        std::fs::create_dir_all(&folder)?;
        let mut files = Vec::with_capacity(args.slices);
        for (index, instance) in series.instances().context("writing the synthetic series")?.into_iter().enumerate() {
            let path = folder.join(format!("{index:04}.dcm"));
            std::fs::write(&path, instance)?;
            files.push(path);
        }
        let mut order: Vec<usize> = (0..servers.len()).collect();
        if round.is_multiple_of(2) {
            order.reverse();
        }
        for index in order {
            let started = Instant::now();
            servers[index].store_scu(&files)?;
            let seconds = started.elapsed().as_secs_f64();
            crate::report!(
                "| {round} | {} | {} | {seconds:.2} | {:.0} |",
                servers[index].name,
                args.slices,
                args.slices as f64 / seconds
            );
            totals[index] = (totals[index].0 + args.slices, totals[index].1 + seconds);
        }
    }
    let rates: Vec<f64> = totals.iter().map(|(instances, seconds)| *instances as f64 / seconds).collect();
    for (server, rate) in servers.iter().zip(&rates) {
        crate::report!("\n{}: {rate:.0} instances/s by C-STORE", server.name);
    }
    if let [petal, orthanc] = rates[..] {
        crate::report!("\npetal / Orthanc by C-STORE: {:.2}× (instances/s, same series, same run)", petal / orthanc);
    }
    Ok(())
}

/// Instances/s of each server on the same series, and their ratio.
async fn throughput(args: &StowBenchArgs, servers: &[&ServerProcess]) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut totals = vec![(0usize, 0usize, 0.0f64); servers.len()];
    crate::report!("| round | server | instances | MB | seconds | instances/s | MB/s |\n|---|---|---|---|---|---|---|");
    for round in 1..=args.warmup + args.rounds {
        let body = series_body(args)?;
        let megabytes = body.len() as f64 / 1e6;
        let warming = round <= args.warmup;
        let label = if warming { format!("warm-up {round}") } else { (round - args.warmup).to_string() };
        // Alternate who goes first, so neither always meets a warmer page cache.
        let mut order: Vec<usize> = (0..servers.len()).collect();
        if round.is_multiple_of(2) {
            order.reverse();
        }
        for index in order {
            let server = servers[index];
            let started = Instant::now();
            server.post(&client, body.clone(), BOUNDARY).await?;
            let seconds = started.elapsed().as_secs_f64();
            crate::report!(
                "| {label} | {} | {} | {megabytes:.1} | {seconds:.2} | {:.0} | {:.1} |",
                server.name,
                args.slices,
                args.slices as f64 / seconds,
                megabytes / seconds
            );
            if warming {
                continue;
            }
            let total = &mut totals[index];
            *total = (total.0 + args.slices, total.1 + body.len(), total.2 + seconds);
        }
    }
    crate::report!(
        "\n(warm-up rounds not counted)\n\n| server | instances/s | MB/s | peak RSS MiB |\n|---|---|---|---|"
    );
    let mut rates = Vec::new();
    for (server, (instances, bytes, seconds)) in servers.iter().zip(&totals) {
        let rate = *instances as f64 / seconds;
        rates.push(rate);
        let peak = server.memory().map(|m| format!("{:.0}", mib(m.peak_kib))).unwrap_or_else(|_| "?".into());
        crate::report!("| {} | {rate:.0} | {:.1} | {peak} |", server.name, *bytes as f64 / 1e6 / seconds);
    }
    if let [petal, orthanc] = rates[..] {
        crate::report!("\npetal / Orthanc: {:.2}× (instances/s, same series, same run)", petal / orthanc);
    }
    Ok(())
}

/// petal's resident memory while it ingests `instances` instances.
async fn memory(args: &StowBenchArgs, petal: &ServerProcess, instances: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = petal.memory()?;
    crate::report!(
        "| instances stored | RSS MiB | peak RSS MiB |\n|---|---|---|\n| 0 | {:.0} | {:.0} |",
        mib(started.rss_kib),
        mib(started.peak_kib)
    );
    let (mut stored, mut samples) = (0usize, Vec::new());
    let clock = Instant::now();
    while stored < instances {
        petal.post(&client, series_body(args)?, BOUNDARY).await?;
        stored += args.slices;
        let now = petal.memory()?;
        samples.push((stored, now.rss_kib));
        crate::report!("| {stored} | {:.0} | {:.0} |", mib(now.rss_kib), mib(now.peak_kib));
    }
    let end = petal.memory()?;
    // Flat: the second half of the run adds (almost) nothing to what the first half reached.
    let half = samples.len() / 2;
    let first_half_max = samples[..half.max(1)].iter().map(|s| s.1).max().unwrap_or(0);
    let second_half_max = samples[half..].iter().map(|s| s.1).max().unwrap_or(0);
    let growth = mib(second_half_max.saturating_sub(first_half_max));
    crate::report!(
        "\n{stored} instances in {:.1} s; peak RSS {:.0} MiB; RSS at the end {:.0} MiB; the second half of the run \
         raised the highest RSS by {growth:.1} MiB ({})",
        clock.elapsed().as_secs_f64(),
        mib(end.peak_kib),
        mib(end.rss_kib),
        if growth <= 0.05 * mib(first_half_max) { "flat" } else { "growing" }
    );
    Ok(())
}
