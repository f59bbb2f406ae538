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

mod args;
mod clients;
mod cstore;
mod during_denoise;
mod memory;
mod sequential;

pub use args::StowBenchArgs;

use super::servers::{PetalOptions, ScratchFolder, ServerProcess};

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
