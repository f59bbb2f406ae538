//! `--dimse`: each round's series sent by C-STORE (dcmtk storescu, one association per
//! series) to each server's DICOM port.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::args::{StowBenchArgs, round_order};
use crate::app::bench::servers::ServerProcess;
use crate::dicom::synthetic::SeriesSpec;

/// Instances/s of each server receiving the same series by C-STORE, and their ratio.
pub(super) fn run(args: &StowBenchArgs, servers: &[&ServerProcess], dir: &Path) -> anyhow::Result<()> {
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
        for index in round_order(round, servers.len()) {
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
