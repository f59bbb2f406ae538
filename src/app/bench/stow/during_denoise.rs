//! `--during-denoise SLICES`: petal's ingest rate alone and while its own worker denoises a
//! series on the same machine, as in a one-process deployment where a scanner keeps sending
//! while the previous patient is denoised. petal runs with its worker and the shipped model;
//! a simulated full-count series of SLICES slices is the denoise job, re-queued through the
//! API before each busy round. The measured series stay incomplete (no NumberOfSlices, an
//! hour's quiet period), so only the bench's job is ever denoised.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::args::{StowBenchArgs, round_label};
use crate::app::bench::servers::{BOUNDARY, ServerProcess, multipart_body};
use crate::domain::JobState;

/// How long the bench waits for a denoise job to be claimed or to end.
const JOB_PATIENCE: Duration = Duration::from_secs(600);

/// The API calls the bench makes to petal.
struct Api<'a> {
    client: reqwest::Client,
    server: &'a ServerProcess,
}

impl Api<'_> {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.server.base_url));
        match &self.server.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn json(&self, method: reqwest::Method, path: &str) -> anyhow::Result<serde_json::Value> {
        let response = self.request(method, path).send().await.with_context(|| format!("calling {path}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.with_context(|| format!("reading {path}"))?;
        anyhow::ensure!(status.is_success(), "{path} answered {status}: {body}");
        Ok(body)
    }

    /// Jobs queued or running.
    async fn active_jobs(&self) -> anyhow::Result<usize> {
        let mut active = 0;
        for state in [JobState::Queued, JobState::Running] {
            let list = self.json(reqwest::Method::GET, &format!("/api/v1/jobs?state={}", state.as_str())).await?;
            active += list["jobs"].as_array().map_or(0, Vec::len);
        }
        Ok(active)
    }

    async fn job(&self, job_id: &str) -> anyhow::Result<serde_json::Value> {
        self.json(reqwest::Method::GET, &format!("/api/v1/jobs/{job_id}")).await
    }

    async fn job_state(&self, job_id: &str) -> anyhow::Result<JobState> {
        let job = self.job(job_id).await?;
        let state = job["state"].as_str().context("a job without a state")?;
        state.parse().with_context(|| format!("job state {state}"))
    }

    /// Waits until `done` holds, polling every 20 ms.
    async fn wait_for<F, Fut>(&self, what: &str, mut done: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        let deadline = Instant::now() + JOB_PATIENCE;
        while !done().await? {
            anyhow::ensure!(Instant::now() < deadline, "gave up waiting {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

pub(super) async fn run(args: &StowBenchArgs, petal: &ServerProcess, job_slices: usize) -> anyhow::Result<()> {
    anyhow::ensure!(job_slices >= 3, "--during-denoise needs a series of at least 3 slices");
    let api = Api { client: reqwest::Client::new(), server: petal };
    let size = usize::from(args.size);
    let job_series =
        tokio::task::spawn_blocking(move || crate::app::bench::denoise::simulated_series(size, job_slices))
            .await
            .context("simulating the job's series")??;
    let job_series_uid = job_series.series_uid.clone();
    // Its arrival completes it (NumberOfSlices) and queues the first denoise: the warm-up,
    // which also loads the model.
    let clock = Instant::now();
    petal.post(&api.client, multipart_body(&job_series.instances, BOUNDARY).into()).await?;
    api.wait_for("for the first denoise job", || async { Ok(api.active_jobs().await? == 0) }).await?;
    crate::report!(
        "denoise job: a simulated {size}×{size}×{job_slices} series with the shipped model; the first run \
         (model load included) ended {:.1} s after its upload began",
        clock.elapsed().as_secs_f64()
    );
    crate::report!("| round | petal's worker | instances | seconds | instances/s |\n|---|---|---|---|---|");
    let (mut idle, mut busy) = ((0usize, 0.0f64), (0usize, 0.0f64));
    let mut job_seconds = Vec::new();
    for round in 1..=args.warmup + args.rounds {
        let label = round_label(round, args.warmup);
        for denoising in if round.is_multiple_of(2) { [true, false] } else { [false, true] } {
            let job_id = match denoising {
                true => Some(start_denoise(&api, &job_series_uid).await?),
                false => None,
            };
            let requests = args.series_requests()?;
            let started = Instant::now();
            for request in requests {
                petal.post(&api.client, request.body).await?;
            }
            let seconds = started.elapsed().as_secs_f64();
            let overlapped = match &job_id {
                Some(job_id) => api.job_state(job_id).await? == JobState::Running,
                None => true,
            };
            let worker = match (denoising, overlapped) {
                (false, _) => "idle",
                (true, true) => "denoising",
                (true, false) => "denoising (ended before the request; not counted)",
            };
            crate::report!(
                "| {label} | {worker} | {} | {seconds:.2} | {:.0} |",
                args.slices,
                args.slices as f64 / seconds
            );
            if let Some(job_id) = &job_id {
                job_seconds.push(finish(&api, job_id).await?);
            }
            if round <= args.warmup || !overlapped {
                continue;
            }
            let tally = if denoising { &mut busy } else { &mut idle };
            *tally = (tally.0 + args.slices, tally.1 + seconds);
        }
    }
    anyhow::ensure!(busy.0 > 0, "no request overlapped a denoise job: give --during-denoise more slices");
    let (idle_rate, busy_rate) = (idle.0 as f64 / idle.1, busy.0 as f64 / busy.1);
    crate::report!(
        "\n(warm-up rounds not counted)\n\npetal alone: {idle_rate:.0} instances/s; while denoising: {busy_rate:.0} \
         instances/s ({:.2}× of alone); a denoise job ran {:.1}–{:.1} s (claimed to finished)",
        busy_rate / idle_rate,
        job_seconds.iter().copied().fold(f64::INFINITY, f64::min),
        job_seconds.iter().copied().fold(0.0, f64::max)
    );
    Ok(())
}

/// Queues the job series again and waits until the worker has claimed it; its job id.
async fn start_denoise(api: &Api<'_>, series_uid: &str) -> anyhow::Result<String> {
    let accepted = api.json(reqwest::Method::POST, &format!("/api/v1/series/{series_uid}/denoise")).await?;
    let job_id = accepted["job_id"].as_str().context("the denoise answer carries no job id")?.to_owned();
    api.wait_for("for the worker to claim the job", || async { Ok(api.job_state(&job_id).await? != JobState::Queued) })
        .await?;
    Ok(job_id)
}

/// Waits for the job to end; fails unless it succeeded, else its seconds from claim to end.
async fn finish(api: &Api<'_>, job_id: &str) -> anyhow::Result<f64> {
    api.wait_for("for the denoise job", || async {
        Ok(matches!(api.job_state(job_id).await?, JobState::Succeeded | JobState::Failed | JobState::Cancelled))
    })
    .await?;
    let job = api.job(job_id).await?;
    anyhow::ensure!(job["state"] == "succeeded", "the denoise job {job_id} did not succeed: {}", job["last_error"]);
    let (started, finished) = (job["started_ms"].as_i64(), job["finished_ms"].as_i64());
    let (Some(started), Some(finished)) = (started, finished) else {
        anyhow::bail!("the denoise job {job_id} has no start or end time")
    };
    Ok((finished - started) as f64 / 1000.0)
}
