//! What every mode of `petal bench stow` shares: its flags, the series it posts (split into
//! STOW-RS requests) and the order and labels of its rounds.

use anyhow::Context;

use crate::app::bench::servers::{BOUNDARY, multipart_body};
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
    pub(super) fn flags(&self) -> String {
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
    pub(super) fn series_requests(&self) -> anyhow::Result<Vec<StowRequest>> {
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
pub(super) struct StowRequest {
    pub(super) instances: usize,
    pub(super) body: bytes::Bytes,
}

impl StowRequest {
    pub(super) fn megabytes(requests: &[StowRequest]) -> f64 {
        requests.iter().map(|r| r.body.len()).sum::<usize>() as f64 / 1e6
    }
}

/// Who goes first in `round`: the servers' order alternates, so neither always meets a
/// warmer page cache.
pub(super) fn round_order(round: usize, servers: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..servers).collect();
    if round.is_multiple_of(2) {
        order.reverse();
    }
    order
}

/// The row label of `round`: warm-up rounds are marked, counted ones numbered from 1.
pub(super) fn round_label(round: usize, warmup: usize) -> String {
    if round <= warmup { format!("warm-up {round}") } else { (round - warmup).to_string() }
}
