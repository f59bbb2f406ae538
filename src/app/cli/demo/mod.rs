//! `petal demo`: shows the main job to a newcomer. It simulates a small whole-body study,
//! posts it to a running petal over STOW-RS as a PACS would, waits for the derived series
//! and prints where to fetch it. The study's N2N halves start a learning round; the demo
//! waits for it and ends with one line that judges it by the patient's known truth
//! ([`round_verdict`]).

mod round_verdict;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::app::config::DemoArgs;
use crate::dicom::simulated_study::{Silent, SimulationSettings, StudyManifest, write_study};
use crate::science::simulation::Grid;
use round_verdict::{DemoSeries, Petal, Truth, judge_round};

const BOUNDARY: &str = "petal-demo-boundary";

fn multipart(folder: &Path) -> anyhow::Result<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    let mut body = Vec::new();
    for path in paths {
        body.extend_from_slice(format!("\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
        body.extend_from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Ok(body)
}

pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| {
            format!("reading the admin token from {} (start `petal serve` first)", args.token_file.display())
        })?
        .trim()
        .to_owned();
    let base = args.url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::new();
    let ready =
        client.get(format!("{base}/readyz")).send().await.with_context(|| format!("reaching petal at {base}"))?;
    let ready_status = ready.status();
    let readiness = ready.text().await.unwrap_or_default();
    anyhow::ensure!(ready_status.is_success(), "petal at {base} is not ready to denoise: {readiness}");

    let folder = std::env::temp_dir().join(format!("petal-demo-{}", std::process::id()));
    let settings = SimulationSettings::original(args.seed, Grid::new(args.size, args.slices), args.recon);
    println!(
        "simulating a {}×{}×{} whole-body FDG study (seed {}, OSEM {})…",
        args.size,
        args.size,
        args.slices,
        args.seed,
        args.recon.name()
    );
    let manifest: StudyManifest = {
        let (settings, folder) = (settings.clone(), folder.clone());
        tokio::task::spawn_blocking(move || write_study(&settings, &folder, &Silent)).await.context("simulating")??
    };
    let study_dir = folder.join(settings.study_folder());
    let full = manifest.series.iter().find(|s| s.folder == "full-count").context("the full-count series")?;
    for series in manifest.series.iter().filter(|s| s.folder != "low-count-01") {
        let response = client
            .post(format!("{base}/dicomweb/studies"))
            .bearer_auth(&token)
            .header("content-type", format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}"))
            .body(multipart(&study_dir.join(&series.folder))?)
            .send()
            .await
            .context("STOW-RS")?;
        anyhow::ensure!(response.status().is_success(), "STOW-RS of {} answered {}", series.folder, response.status());
        println!("posted {} ({})", series.description, series.folder);
    }
    println!("waiting for petal to denoise {} …", full.description);
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    let status = loop {
        let status: serde_json::Value = client
            .get(format!("{base}/api/v1/series/{}", full.series_uid))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        match status["state"].as_str() {
            Some("done") => break status,
            Some("failed") => anyhow::bail!("denoising failed: {}", status["reason"]),
            _ if Instant::now() > deadline => anyhow::bail!("not denoised after {} s: {status}", args.timeout_seconds),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let truth = Truth::load(&study_dir);
    let _ = std::fs::remove_dir_all(&folder);
    let truth = truth?;
    let derived = status["derived_series_uid"].as_str().unwrap_or_default();
    let study = &manifest.study_uid;
    println!(
        "denoised in {:.1} s with model version {}",
        status["inference_ms"].as_f64().unwrap_or(0.0) / 1000.0,
        status["model_version"]["id"]
    );
    println!();
    println!("  status:    {base}/api/v1/series/{}", full.series_uid);
    println!("  QIDO:      {base}/dicomweb/studies/{study}/series");
    println!("  WADO:      {base}/dicomweb/studies/{study}/series/{derived}");
    println!("  preview:   {base}/dicomweb/studies/{study}/series/{derived}/rendered");
    println!("  (send `Authorization: Bearer $(cat {})`)", args.token_file.display());
    println!();
    println!("waiting for the learning round the N2N halves started …");
    let petal = Petal { client: &client, base: &base, token: &token };
    let series = DemoSeries {
        study_uid: study,
        full_count: &full.series_uid,
        base_derived: derived,
        patient_key: status["patient_key"].as_str().context("the series' patient_key")?,
    };
    println!("{}", judge_round(&petal, &truth, &series, deadline).await?);
    Ok(())
}
