//! `petal bench stow`: STOW-RS ingest. Starts petal (its own `serve` process, API only, on
//! a fresh database) and, with `--orthanc`, Orthanc 1.10 with its DICOMweb plugin, and posts
//! the same synthetic PET series to each (a new series per round, the servers' order
//! alternating), timing each request end to end: instances/s for each and their ratio,
//! measured in one run.
//!
//! The modes, one module each:
//! - [`sequential`]: one sender, one series per request (the default);
//! - [`clients`]: `--clients N` senders at once, with request latencies;
//! - [`during_denoise`]: petal's ingest alone and while its worker denoises a series;
//! - [`cstore`]: `--dimse`, the same series by C-STORE from dcmtk's storescu;
//! - [`memory`]: `--memory N`, petal's resident memory while it ingests N instances.

mod clients;
mod cstore;
mod during_denoise;
mod memory;
mod sequential;

use anyhow::Context;

use super::servers::{BOUNDARY, PetalOptions, ScratchFolder, ServerProcess, multipart_body};
use crate::dicom::synthetic::SeriesSpec;

#[derive(Debug, Clone, clap::Args)]
pub struct StowBenchArgs {
    /// Slices per series.
    #[arg(long, default_value_t = 300)]
    pub slices: usize,
    /// Rows and columns of each slice.
    #[arg(long, default_value_t = 192)]
    pub size: u16,
    /// Series posted to each server (by each client, with --clients) and counted.
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
    /// Senders posting at once (scanners, a PACS), each its own series in every round;
    /// reports throughput and request latencies.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub clients: Option<u16>,
    /// Instances per STOW-RS request: a series is sent in requests of this many (0: the
    /// whole series in one request).
    #[arg(long, default_value_t = 0)]
    pub request_instances: usize,
    /// petal's ingest alone and while its worker denoises a series of this many slices
    /// (same size) on the same machine, round by round (petal only).
    #[arg(long, conflicts_with_all = ["orthanc", "clients", "memory"])]
    pub during_denoise: Option<usize>,
    /// Memory instead of speed: post this many instances to petal and follow its RSS.
    #[arg(long)]
    pub memory: Option<usize>,
}

impl StowBenchArgs {
    /// The flags of this run as they would be typed, for the report's first line.
    fn flags(&self) -> String {
        let mut flags = match self.memory {
            Some(n) => format!("--memory {n}"),
            None => format!("--rounds {} --warmup {}", self.rounds, self.warmup),
        };
        let mut add = |on: bool, flag: String| {
            if on {
                flags.push(' ');
                flags.push_str(&flag);
            }
        };
        add(self.orthanc, "--orthanc".into());
        add(self.dimse, "--dimse".into());
        add(self.clients.is_some(), format!("--clients {}", self.clients.unwrap_or(1)));
        add(self.request_instances > 0, format!("--request-instances {}", self.request_instances));
        add(self.during_denoise.is_some(), format!("--during-denoise {}", self.during_denoise.unwrap_or(0)));
        flags
    }

    /// A new series, split into the STOW-RS bodies one sender posts for it.
    fn series_requests(&self) -> anyhow::Result<Vec<StowRequest>> {
        let series = SeriesSpec { rows: self.size, columns: self.size, ..SeriesSpec::new(self.slices) };
        let instances = series.instances().context("writing the synthetic series")?;
        let per_request = if self.request_instances == 0 { instances.len() } else { self.request_instances };
        Ok(instances
            .chunks(per_request)
            .map(|chunk| StowRequest { instances: chunk.len(), body: multipart_body(chunk, BOUNDARY).into() })
            .collect())
    }
}

/// One STOW-RS request body and how many instances it carries.
#[derive(Clone)]
struct StowRequest {
    instances: usize,
    body: bytes::Bytes,
}

impl StowRequest {
    fn megabytes(requests: &[StowRequest]) -> f64 {
        requests.iter().map(|r| r.body.len()).sum::<usize>() as f64 / 1e6
    }
}

/// Who goes first in `round`: the servers' order alternates, so neither always meets a
/// warmer page cache.
fn round_order(round: usize, servers: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..servers).collect();
    if round.is_multiple_of(2) {
        order.reverse();
    }
    order
}

/// The row label of `round`: warm-up rounds are marked, counted ones numbered from 1.
fn round_label(round: usize, warmup: usize) -> String {
    if round <= warmup { format!("warm-up {round}") } else { (round - warmup).to_string() }
}

pub async fn run(args: &StowBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.slices > 0 && args.rounds > 0, "--slices and --rounds must be positive");
    let dir = ScratchFolder::new("petal-bench-stow")?;
    crate::report!("petal bench stow --slices {} --size {} {}", args.slices, args.size, args.flags());
    crate::report!(
        "date: {}; machine: {}; petal's database: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        super::machine(),
        if args.database_url.is_some() { "given" } else { "SQLite (temporary)" }
    );
    let petal_dir = dir.path().join("petal");
    std::fs::create_dir_all(&petal_dir)?;
    let options =
        PetalOptions { database: args.database_url.clone(), dimse: args.dimse, worker: args.during_denoise.is_some() };
    let petal = ServerProcess::petal(&petal_dir, &options).await?;
    if let Some(instances) = args.memory {
        return memory::run(args, &petal, instances).await;
    }
    if let Some(job_slices) = args.during_denoise {
        return during_denoise::run(args, &petal, job_slices).await;
    }
    let orthanc = if args.orthanc {
        let orthanc_dir = dir.path().join("orthanc");
        std::fs::create_dir_all(&orthanc_dir)?;
        Some(ServerProcess::orthanc(&orthanc_dir, args.dimse).await?)
    } else {
        None
    };
    let servers: Vec<&ServerProcess> = std::iter::once(&petal).chain(orthanc.as_ref()).collect();
    match args.clients {
        Some(clients) => clients::run(args, &servers, usize::from(clients)).await?,
        None => sequential::run(args, &servers).await?,
    }
    if args.dimse {
        cstore::run(args, &servers, &dir.path().join("cstore"))?;
    }
    Ok(())
}
