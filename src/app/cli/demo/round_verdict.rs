//! The demo's last line: the round that the demo's N2N halves started, judged by the
//! simulated patient's known truth, the noiseless reconstruction `petal simulate` writes
//! beside every study (docs/simulator.md).
//!
//! Everything comes from the running petal over HTTP, as any client would see it: the
//! derived series of the base model and, when the round went live, the series petal denoised
//! again with the new version. A rejected version never denoises anything on the server, so
//! its weights are exported (`GET /api/v1/models/{id}/weights`) and run here on the same
//! full-count series. Both are scored by the error over the body against the truth, the
//! measure `petal eval rounds` uses (docs/learning.md).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::TryStreamExt;
use serde_json::Value;

use crate::dicom::multipart::MultipartReader;
use crate::dicom::simulated_study::{TruthSidecar, read_f32_volume};
use crate::dicom::volume::{Slice, assemble};
use crate::science::evaluation::rounds::case::{TRUTH_BAND_PERCENT, TruthVerdict};
use crate::science::evaluation::rounds::measures::relative_error;
use crate::science::image::{Grid, Image3};
use crate::science::model::burn_denoise::denoise_with_burn;
use crate::science::model::config::DnCnnConfig;
use crate::science::model::directory::StoredModel;

/// Largest series the demo reads back.
const MAX_SERIES_BYTES: u64 = 4 << 30;
/// How long pair detection may take to start the round once the series is denoised.
const ROUND_APPEARS_WITHIN: Duration = Duration::from_secs(60);

/// The simulated patient's truth: its noiseless reconstruction and body.
pub struct Truth {
    image: Image3,
    body: Vec<bool>,
    /// Patient z (mm) of slice 0's centre, to place the slices read back.
    first_z_mm: f64,
}

impl Truth {
    /// Reads `truth/` of a study written by `petal simulate`'s writer.
    pub fn load(study_dir: &Path) -> anyhow::Result<Self> {
        let folder = study_dir.join("truth");
        let sidecar_path = folder.join("truth.json");
        let sidecar: TruthSidecar = serde_json::from_slice(
            &std::fs::read(&sidecar_path).with_context(|| format!("reading {}", sidecar_path.display()))?,
        )
        .with_context(|| format!("parsing {}", sidecar_path.display()))?;
        let image = read_f32_volume(&folder.join(&sidecar.noiseless_reconstruction), sidecar.grid)?;
        let body_path = folder.join(&sidecar.body);
        let body = std::fs::read(&body_path).with_context(|| format!("reading {}", body_path.display()))?;
        anyhow::ensure!(body.len() == sidecar.grid.voxels(), "{} does not fit the grid", body_path.display());
        Ok(Self { image, body: body.into_iter().map(|b| b != 0).collect(), first_z_mm: sidecar.first_voxel_mm[2] })
    }

    fn grid(&self) -> Grid {
        self.image.grid
    }

    /// ‖output − truth‖ / ‖truth‖ over the body.
    fn error(&self, output: &Image3) -> f64 {
        relative_error(&output.data, &self.image.data, &self.body)
    }
}

/// The running petal, as the demo's admin token sees it.
pub struct Petal<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a str,
    pub token: &'a str,
}

impl Petal<'_> {
    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token)
            .header("accept", "multipart/related; type=\"application/dicom\", application/json, */*")
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "GET {path} answered {status}: {}", response.text().await?);
        Ok(response)
    }

    pub async fn json(&self, path: &str) -> anyhow::Result<Value> {
        self.get(path).await?.json().await.with_context(|| format!("reading the JSON of {path}"))
    }

    /// A series read back by WADO-RS, in SUV, on the truth's grid.
    async fn series_suv(&self, study: &str, series: &str, truth: &Truth) -> anyhow::Result<Image3> {
        let path = format!("/dicomweb/studies/{study}/series/{series}");
        let response = self.get(&path).await?;
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let boundary = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|b| b.trim_matches('"').to_owned())
            .with_context(|| format!("{path} answered {content_type:?}, without a multipart boundary"))?;
        let mut reader =
            MultipartReader::new(response.bytes_stream().map_err(|e| e.to_string()), &boundary, MAX_SERIES_BYTES);
        let mut slices = Vec::new();
        while let Some(part) = reader.next_part().await.with_context(|| format!("reading {path}"))? {
            slices.push(Slice::from_part10(&part.body).with_context(|| format!("decoding an instance of {path}"))?);
        }
        let volume = assemble(slices).with_context(|| format!("assembling {path}"))?;
        let grid = truth.grid();
        anyhow::ensure!(
            volume.slices.len() == grid.slices
                && volume.slices.iter().all(|s| (s.rows as usize, s.columns as usize) == (grid.size, grid.size)),
            "{path} does not match the simulated {}×{}×{} grid",
            grid.size,
            grid.size,
            grid.slices
        );
        let mut image = Image3 { grid, data: vec![0.0; grid.voxels()] };
        let plane = grid.pixels_per_slice();
        for slice in &volume.slices {
            let index = ((slice.position[2] - truth.first_z_mm) / grid.slice_mm).round();
            anyhow::ensure!(
                index >= 0.0 && (index as usize) < grid.slices,
                "{path} holds a slice at z {:.1} mm, outside the simulated volume",
                slice.position[2]
            );
            let start = index as usize * plane;
            for (out, value) in image.data[start..start + plane].iter_mut().zip(&slice.values) {
                *out = volume.normalisation.forward(*value);
            }
        }
        Ok(image)
    }
}

/// The series of the demo's study the verdict needs.
pub struct DemoSeries<'a> {
    pub study_uid: &'a str,
    /// The full-count series petal denoises.
    pub full_count: &'a str,
    /// Its derived series made with the base model.
    pub base_derived: &'a str,
    pub patient_key: &'a str,
}

/// Waits for the round the halves started and returns the demo's last line.
pub async fn judge_round(
    petal: &Petal<'_>,
    truth: &Truth,
    series: &DemoSeries<'_>,
    deadline: Instant,
) -> anyhow::Result<String> {
    let before = truth.error(&petal.series_suv(series.study_uid, series.base_derived, truth).await?);
    let Some(round) = finished_round(petal, series.patient_key, deadline).await? else {
        return Ok(format!(
            "round: none started within {} s of the denoised series (is PETAL_AUTO_ROUNDS off?)",
            ROUND_APPEARS_WITHIN.as_secs()
        ));
    };
    let state = round["state"].as_str().unwrap_or_default();
    let version = round["version_id"].as_i64();
    let after_image = match (state, version) {
        ("activated", Some(version)) => {
            let derived = redenoised(petal, series.full_count, version, deadline).await?;
            petal.series_suv(series.study_uid, &derived, truth).await?
        }
        ("rejected", Some(version)) => {
            let input = petal.series_suv(series.study_uid, series.full_count, truth).await?;
            let model = exported_model(petal, version).await?;
            tokio::task::spawn_blocking(move || denoise_with_burn(&model, &input))
                .await
                .context("denoising with the rejected version")??
        }
        _ => {
            let why = round["error"].as_str().unwrap_or("no reason recorded");
            return Ok(format!("round: {state} ({why})"));
        }
    };
    let change = (truth.error(&after_image) / before - 1.0) * 100.0;
    let closer = if change <= 0.0 {
        format!("{:.1} % closer to the truth", -change)
    } else {
        format!("{change:.1} % further from the truth")
    };
    let verdict = TruthVerdict::of(change);
    Ok(if state == "activated" {
        match verdict {
            TruthVerdict::Worse => format!("round: activated, but {closer}; the truth disagrees"),
            _ => format!("round: activated, {closer}"),
        }
    } else {
        let reasons: Vec<&str> =
            round["gate"]["reasons"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let agrees = if verdict.agrees_with(false) { "agrees" } else { "disagrees" };
        let band = if verdict == TruthVerdict::Unchanged {
            format!(", within its {TRUTH_BAND_PERCENT} % band")
        } else {
            String::new()
        };
        format!("round: rejected ({}); the truth {agrees}: {closer}{band}", reasons.join("; "))
    })
}

/// The patient's first round once it is over; `None` when none starts.
async fn finished_round(petal: &Petal<'_>, patient_key: &str, deadline: Instant) -> anyhow::Result<Option<Value>> {
    let appear_by = Instant::now() + ROUND_APPEARS_WITHIN;
    let mut last_report = Instant::now();
    let mut last_line = String::new();
    loop {
        let list = petal.json(&format!("/api/v1/patients/{patient_key}/rounds")).await?;
        let round = list["rounds"].as_array().and_then(|rounds| rounds.first()).cloned();
        match round {
            None if Instant::now() > appear_by => return Ok(None),
            Some(round) if !matches!(round["state"].as_str(), Some("queued" | "running")) => return Ok(Some(round)),
            Some(round) if last_report.elapsed() > Duration::from_secs(15) => {
                last_report = Instant::now();
                let progress = &round["progress"];
                let line = if progress["step"] == progress["total_steps"] {
                    format!("round {}: trained; the gate is judging it", round["id"])
                } else {
                    format!("round {}: step {} of {}", round["id"], progress["step"], progress["total_steps"])
                };
                if line != last_line {
                    println!("{line}");
                    last_line = line;
                }
            }
            _ => {}
        }
        anyhow::ensure!(Instant::now() < deadline, "the patient's round did not finish in time");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The derived series of the full-count series once petal has denoised it with `version`.
async fn redenoised(petal: &Petal<'_>, full_count: &str, version: i64, deadline: Instant) -> anyhow::Result<String> {
    loop {
        let status = petal.json(&format!("/api/v1/series/{full_count}")).await?;
        if status["state"] == "done" && status["model_version"]["id"].as_i64() == Some(version) {
            return status["derived_series_uid"].as_str().map(str::to_owned).context("the re-denoised series' UID");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the series was not denoised again with version {version} in time (is PETAL_REDENOISE_AFTER_ROUND off?)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A version as petal stores it: its config and exported weights.
async fn exported_model(petal: &Petal<'_>, version: i64) -> anyhow::Result<StoredModel> {
    let description = petal.json(&format!("/api/v1/models/{version}")).await?;
    let config: DnCnnConfig = serde_json::from_str(description["config"].as_str().unwrap_or_default())
        .with_context(|| format!("parsing version {version}'s config"))?;
    let weights = petal.get(&format!("/api/v1/models/{version}/weights")).await?.bytes().await?;
    let model = StoredModel::from_parts(config, &weights).with_context(|| format!("loading version {version}"))?;
    anyhow::ensure!(
        Some(model.sha256.as_str()) == description["sha256"].as_str(),
        "version {version}'s exported weights do not match its sha256"
    );
    Ok(model)
}
