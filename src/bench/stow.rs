//! `petal bench stow`: STOW-RS ingest throughput. Starts petal in-process on a fresh
//! database (SQLite by default) and posts synthetic PET series, a new series each round,
//! timing each request end to end (multipart parsing, validation, blob write, index).

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use tokio::sync::oneshot;

use crate::Application;
use crate::config::{Cli, Command};
use crate::dicom::synthetic::SeriesSpec;

#[derive(Debug, Clone, clap::Args)]
pub struct StowBenchArgs {
    /// Slices per series.
    #[arg(long, default_value_t = 300)]
    pub slices: usize,
    /// Rows and columns of each slice.
    #[arg(long, default_value_t = 192)]
    pub size: u16,
    /// Series posted, one request each.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Database to ingest into; a fresh SQLite file in a temporary folder by default.
    #[arg(long)]
    pub database_url: Option<String>,
}

pub async fn run(args: &StowBenchArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("petal-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).context("creating the bench folder")?;
    let database = args.database_url.clone().unwrap_or_else(|| format!("sqlite://{}/petal.db", dir.display()));
    let argv = [
        "petal".to_owned(),
        "serve".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--database-url".to_owned(),
        database.clone(),
        "--blob-store".to_owned(),
        dir.join("blobs").display().to_string(),
        "--admin-token-file".to_owned(),
        dir.join("admin-token").display().to_string(),
        "--no-worker".to_owned(),
        "--log".to_owned(),
        "warn".to_owned(),
    ];
    let Command::Serve(serve) = Cli::try_parse_from(argv).context("bench server flags")?.command else {
        anyhow::bail!("the bench server flags did not parse as `serve`");
    };
    let app = Application::build(serve).await.context("starting petal for the bench")?;
    let url = format!("http://127.0.0.1:{}/dicomweb/studies", app.port());
    let token = std::fs::read_to_string(dir.join("admin-token")).context("reading the bench admin token")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let boundary = "petal-bench-boundary";
    println!("petal bench stow --slices {} --size {} --rounds {}", args.slices, args.size, args.rounds);
    println!(
        "machine: {}; database: {}",
        super::machine(),
        if args.database_url.is_some() { "given" } else { "SQLite (temporary)" }
    );
    println!("| round | instances | MB | seconds | instances/s | MB/s |");
    println!("|---|---|---|---|---|---|");
    let (mut total_instances, mut total_bytes, mut total_seconds) = (0usize, 0usize, 0.0f64);
    for round in 1..=args.rounds {
        let series = SeriesSpec { rows: args.size, columns: args.size, ..SeriesSpec::new(args.slices) };
        let mut body = Vec::new();
        for instance in series.instances().context("writing the synthetic series")? {
            body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
            body.extend_from_slice(&instance);
        }
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let bytes = body.len();
        let started = Instant::now();
        let response = client
            .post(&url)
            .bearer_auth(token.trim())
            .header("content-type", format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .context("posting the series")?;
        let status = response.status();
        response.bytes().await.context("reading the STOW response")?;
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(status.is_success(), "STOW answered {status}");
        let megabytes = bytes as f64 / 1e6;
        println!(
            "| {round} | {} | {megabytes:.1} | {seconds:.2} | {:.0} | {:.1} |",
            args.slices,
            args.slices as f64 / seconds,
            megabytes / seconds
        );
        total_instances += args.slices;
        total_bytes += bytes;
        total_seconds += seconds;
    }
    println!(
        "overall: {:.0} instances/s, {:.1} MB/s",
        total_instances as f64 / total_seconds,
        total_bytes as f64 / 1e6 / total_seconds
    );
    let _ = stop.send(());
    server.await.context("joining the bench server")??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
