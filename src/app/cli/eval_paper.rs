//! `petal eval paper`: reproduces the paper's Table 1 (docs/science.md §6) at the pinned scale
//! of [`PaperScale`], writing `paper-table1.md`, `results.json` and three PNG figures.
//!
//! v1-net is the shipped model (`--model`). Every other network is cached in the work
//! folder (`--work`): v2-net's two stages are `petal train-base` model directories (resumed
//! from their checkpoints when cut short), FT-net, TGD-net and the two online rounds model
//! directories with a record of how they were made. Running the command again reuses
//! whatever was finished with the same parents, data and settings.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use super::progress::bar;
use super::train_base::train_into_directory;
use crate::app::config::{EvalPaperArgs, TrainBaseArgs};
use crate::science::evaluation::paper::bootstrap::compare;
use crate::science::evaluation::paper::figures::{Marker, Point, bias_cov_plot, samples, slice_grid};
use crate::science::evaluation::paper::kse_sweep::{PAPER_FLAGGED_PERCENT, drop_flagged, flagged};
use crate::science::evaluation::paper::matched_noise::matched_filter;
use crate::science::evaluation::paper::scale::PaperScale;
use crate::science::evaluation::paper::scores::Scores;
use crate::science::evaluation::paper::test_scan::TestScan;
use crate::science::evaluation::paper::{
    NETWORKS, NetworkRecord, OSEM_ALONE, PAPER_TABLE, PaperResults, SweepRow, planned_comparisons, report,
};
use crate::science::model::burn_denoise::denoise_with_burn;
use crate::science::model::directory::StoredModel;
use crate::science::simulation::{Image3, ReconVersion};
use crate::science::training::base::data::SimulatedData;
use crate::science::training::fine_tune::{FineTuneData, fine_tune_on_best_device};
use crate::science::training::n2n_round::{Flow, RoundKind, RoundSettings, run_round_on_best_device};
use crate::science::training::trainer::BatchStatistics;

/// Parses `train-base` flags the way the command line does, so the eval's base networks
/// are exactly what the printed command would train.
#[derive(Parser)]
struct TrainBaseCommandLine {
    #[command(flatten)]
    args: TrainBaseArgs,
}

/// Times the stages of one invocation.
struct Stages(Vec<(String, f64)>);

impl Stages {
    fn time<T>(&mut self, name: &str, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let started = Instant::now();
        println!("eval paper: {name}");
        let value = work().with_context(|| format!("stage: {name}"))?;
        self.0.push((name.to_owned(), started.elapsed().as_secs_f64()));
        Ok(value)
    }
}

pub fn run(args: &EvalPaperArgs) -> anyhow::Result<()> {
    let scale = if args.quick { PaperScale::quick() } else { PaperScale::default_scale() };
    scale.validate()?;
    let command = std::iter::once("petal".to_owned()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ");
    let work = args.work.clone().unwrap_or_else(|| PathBuf::from(format!("eval-paper-{}", scale.name)));
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| if args.quick { work.join("results") } else { PathBuf::from("docs/results") });
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let mut stages = Stages(Vec::new());

    let (v1, v1_record) = stages.time("v1-net (the shipped model)", || shipped_network(&args.model, &scale))?;
    let (v2, v2_record) = stages.time("v2-net (the shipped model's recipe on v2)", || v2_network(&scale, &work))?;
    let fine_tune_data =
        SimulatedData::original(scale.grid(), ReconVersion::V2, scale.seconds_per_bed, scale.count_levels.clone());
    let few_v2 = stages.time("simulating the fine-tune studies (v2)", || {
        Ok((0..scale.fine_tune_studies).map(|i| fine_tune_data.pair(scale.base_seed + i)).collect::<Vec<_>>())
    })?;
    let few_v2_description = format!(
        "v2 studies of seeds {}..{}, {}×{}×{}, {} s/bed, inputs at {:?} of the counts",
        scale.base_seed,
        scale.base_seed + scale.fine_tune_studies - 1,
        scale.size,
        scale.size,
        scale.slices,
        scale.seconds_per_bed,
        scale.count_levels
    );
    // FT-net and TGD-net: v1-net fine-tuned the same way on the same few v2 studies,
    // differing only in what the fine-tune may change.
    let fine_tuned_on_v2 = |kind: RoundKind, folder: &str, name: &str| {
        let settings = RoundSettings {
            kind,
            phi: scale.phi,
            steps_per_pass: scale.fine_tune_steps,
            learning_rate: scale.fine_tune_learning_rate,
            patch: scale.patch,
            // Trained as the base networks were (each batch's own statistics), then the
            // retrained channels' running statistics re-estimated over many batches, as the
            // base recipe does: the running averages the steps leave lag the weights.
            batch_statistics: BatchStatistics::PerBatch,
            batch_norm_batches: scale.fine_tune_batch_norm_batches,
            ..RoundSettings::default()
        };
        let origin = Origin { parent_name: "v1-net", parent: &v1, data: &few_v2_description };
        cached_network(&work.join(folder), name, origin, &settings, &|settings| {
            let (tuned, _) = fine_tune_on_best_device(
                &v1,
                FineTuneData { pairs: &few_v2, anchor: None },
                settings,
                &mut progress_observer(name),
            )?;
            Ok((tuned.model, tuned.fraction_retrained))
        })
    };
    let (ft, ft_record) = stages.time("FT-net (last three layers, v2)", || {
        fine_tuned_on_v2(RoundKind::FineTuneLastLayers, "ft-net", "FT-net")
    })?;
    let (tgd, tgd_record) =
        stages.time("TGD-net (TGD, v2)", || fine_tuned_on_v2(RoundKind::Tgd, "tgd-net", "TGD-net"))?;
    let test = stages.time("simulating the test scan", || TestScan::simulate(&scale))?;
    let pair_description = format!(
        "two more realizations of {} % of the counts of test patient {} (a second scan, v2), {}×{}×{}, {} s/bed",
        scale.realization_fraction * 100.0,
        test.seed,
        scale.size,
        scale.size,
        scale.slices,
        scale.test_seconds_per_bed
    );
    // The online rounds: petal's defaults, on the pair, from the network a site would run.
    let online = RoundSettings {
        steps_per_pass: scale.n2n_steps,
        patch: scale.patch,
        phi: scale.phi,
        ..RoundSettings::default()
    };
    let online_round = |folder: &str, name: &str, parent_name: &str, parent: &StoredModel| {
        cached_network(
            &work.join(folder),
            name,
            Origin { parent_name, parent, data: &pair_description },
            &online,
            &|settings| {
                let (outcome, _) =
                    run_round_on_best_device(parent, &test.v2_pair, None, settings, &mut progress_observer(name))?;
                Ok((outcome.model, outcome.report.fraction_retrained))
            },
        )
    };
    let (n2n, n2n_record) = stages
        .time("TGD_N2N-net (online round from v2-net)", || online_round("tgd-n2n-net", "TGD_N2N-net", "v2-net", &v2))?;
    let (n2n_twice, n2n_twice_record) = stages.time("TGD²_N2N-net (online round from TGD-net)", || {
        online_round("tgd2-n2n-net", "TGD²_N2N-net", "TGD-net", &tgd)
    })?;
    let networks = [
        (&v1, v1_record),
        (&v2, v2_record),
        (&ft, ft_record),
        (&tgd, tgd_record),
        (&n2n, n2n_record),
        (&n2n_twice, n2n_twice_record),
    ];

    let scores = stages.time("denoising and scoring the test realizations", || {
        let progress = bar((2 * NETWORKS.len() * scale.realizations) as u64, "scoring");
        let mut scores = Vec::new();
        for data in [ReconVersion::V2, ReconVersion::V1] {
            let version = test.version(data);
            scores.push(Scores::measure(OSEM_ALONE, version, &version.realizations, &test)?);
            for (model, record) in &networks {
                let outputs = denoise_all(model, &version.realizations, &|| progress.inc(1))?;
                scores.push(Scores::measure(&record.name, version, &outputs, &test)?);
            }
        }
        progress.finish_and_clear();
        Ok(scores)
    })?;
    let comparisons = planned_comparisons()
        .into_iter()
        .enumerate()
        .filter_map(|(i, (first, second, data))| {
            let find = |name: &str| scores.iter().find(|s| s.network == name && s.data == data);
            Some(compare(find(first)?, find(second)?, scale.bootstrap_resamples, 17 + i as u64))
        })
        .collect();
    let matched = stages.time("OSEM filtered to each network's noise", || {
        scores
            .iter()
            .filter(|s| s.network != OSEM_ALONE)
            .map(|network| matched_filter(test.version(network.data), &test, network))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let sweep = stages.time("KSE sweep on v1-net", || {
        scale
            .sweep_phis
            .iter()
            .map(|phi| {
                let mask = flagged(&v1, *phi)?;
                let dropped = drop_flagged(&v1, &mask)?;
                let outputs = denoise_all(&dropped, &test.v1.realizations, &|| {})?;
                Ok(SweepRow {
                    phi: *phi,
                    percent_flagged: mask.fraction_retrained * 100.0,
                    paper_percent_flagged: PAPER_FLAGGED_PERCENT
                        .iter()
                        .find(|(p, _)| (p - phi).abs() < 1e-9)
                        .map(|(_, percent)| *percent),
                    layers: mask
                        .layers
                        .iter()
                        .map(|l| (l.layer.clone(), l.channels_retrained, l.retrain.len()))
                        .collect(),
                    dropped: Scores::measure(&format!("v1-net, φ {phi} dropped"), &test.v1, &outputs, &test)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;

    let results = PaperResults {
        command,
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: crate::app::bench::machine(),
        scale: scale.clone(),
        test_seed: test.seed,
        lesions: test.lesions.iter().map(|(l, _)| l.clone()).collect(),
        lesion_voxels: test.lesions.iter().map(|(_, m)| m.iter().filter(|v| **v).count()).collect(),
        networks: networks.iter().map(|(_, r)| r.clone()).collect(),
        scores,
        comparisons,
        matched,
        sweep,
        stages: stages.0,
    };
    write_results(&results, &test, &out)?;
    println!("eval paper: results in {}", out.join("paper-table1.md").display());
    Ok(())
}

/// A progress bar for a fine-tune, as a round observer.
fn progress_observer(name: &str) -> impl FnMut(usize, usize, f64) -> Flow {
    let progress = bar(0, name);
    move |step, total, loss| {
        progress.set_length(total as u64);
        progress.set_position(step as u64);
        progress.set_message(format!("loss {loss:.5}"));
        if step == total {
            progress.finish_and_clear();
        }
        Flow::Continue
    }
}

/// v1-net: the shipped model, which must have the scale's width (v2-net is trained at it).
fn shipped_network(dir: &Path, scale: &PaperScale) -> anyhow::Result<(StoredModel, NetworkRecord)> {
    let model = StoredModel::load(dir).with_context(|| format!("loading the shipped model {}", dir.display()))?;
    anyhow::ensure!(
        (model.config.width_multiplier - scale.width_multiplier).abs() < 1e-9,
        "{} has width multiplier {}, the evaluation trains v2-net at {}: v1-net and v2-net must share their architecture",
        dir.display(),
        model.config.width_multiplier,
        scale.width_multiplier
    );
    let made_by = format!(
        "the shipped model `{}` (sha256 {}; docs/models.md, \"The shipped base model\")",
        dir.display(),
        &model.sha256[..12.min(model.sha256.len())]
    );
    // Its directory records only its last stage's time; docs/models.md gives both.
    Ok((model, NetworkRecord { name: "v1-net".into(), made_by, seconds: 0.0, fraction_retrained: 1.0 }))
}

/// v2-net: the shipped model's two stages ([`BaseRecipe`](crate::science::evaluation::paper::scale::BaseRecipe)) with `--recon v2`, into
/// `work/v2-net-uniform` and `work/v2-net`.
fn v2_network(scale: &PaperScale, work: &Path) -> anyhow::Result<(StoredModel, NetworkRecord)> {
    let stage_one = work.join("v2-net-uniform");
    let dir = work.join("v2-net");
    let mut commands = Vec::new();
    for (output, stage_flags) in
        [(&stage_one, scale.recipe.uniform_stage_flags()), (&dir, scale.recipe.lesion_stage_flags(&stage_one))]
    {
        let argv: Vec<String> = ["train-base".to_owned(), output.display().to_string()]
            .into_iter()
            .chain(data_flags(scale, ReconVersion::V2))
            .chain(stage_flags)
            .collect();
        let args = TrainBaseCommandLine::try_parse_from(&argv).context("the train-base flags of the eval")?.args;
        let made_by = format!("petal {}", argv.join(" "));
        if train_into_directory(&args, &made_by)?.reused {
            println!("eval paper: reusing {} (trained with the same settings)", output.display());
        }
        commands.push(format!("`{made_by}`"));
    }
    let model = StoredModel::load(&dir).with_context(|| format!("loading {}", dir.display()))?;
    let seconds = training_seconds(&stage_one) + training_seconds(&dir);
    let record =
        NetworkRecord { name: "v2-net".into(), made_by: commands.join(", then "), seconds, fraction_retrained: 1.0 };
    Ok((model, record))
}

/// The `train-base` flags naming the shipped model's training data, reconstructed with `recon`.
fn data_flags(scale: &PaperScale, recon: ReconVersion) -> Vec<String> {
    let levels = scale.count_levels.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(",");
    [
        ("--width-multiplier", scale.width_multiplier.to_string()),
        ("--patch", scale.patch.to_string()),
        ("--seed", scale.base_seed.to_string()),
        ("--patients", scale.base_patients.to_string()),
        ("--size", scale.size.to_string()),
        ("--slices", scale.slices.to_string()),
        ("--recon", recon.name().to_owned()),
        ("--seconds-per-bed", scale.seconds_per_bed.to_string()),
        ("--count-levels", levels),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect()
}

/// The training time a `train-base` directory records (0 when it records none).
fn training_seconds(dir: &Path) -> f64 {
    std::fs::read(dir.join("training.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|record| record["seconds"].as_f64())
        .unwrap_or(0.0)
}

/// What a cached fine-tuned network records of how it was made.
#[derive(serde::Serialize, serde::Deserialize)]
struct FineTuneRecord {
    /// The parent's weights, the training data and the settings: another parent, other
    /// data or other settings train again.
    parent_sha256: String,
    data: String,
    settings: RoundSettings,
    seconds: f64,
    fraction_retrained: f64,
}

/// What a fine-tuned network is made from.
struct Origin<'a> {
    parent_name: &'a str,
    parent: &'a StoredModel,
    /// Names the training data (simulated from the scale, so a description identifies it).
    data: &'a str,
}

/// Loads the network cached in `dir` when it was made from `origin` with `settings`,
/// else makes it with `make` and caches it.
fn cached_network(
    dir: &Path,
    name: &str,
    origin: Origin<'_>,
    settings: &RoundSettings,
    make: &dyn Fn(&RoundSettings) -> anyhow::Result<(StoredModel, f64)>,
) -> anyhow::Result<(StoredModel, NetworkRecord)> {
    let made_by = format!(
        "{} from {} on {} ({} steps, lr {}, φ {})",
        settings.kind.as_str(),
        origin.parent_name,
        origin.data,
        settings.total_steps(),
        settings.learning_rate,
        settings.phi
    );
    let record_path = dir.join("record.json");
    let cached = std::fs::read(&record_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<FineTuneRecord>(&bytes).ok())
        .filter(|r| r.parent_sha256 == origin.parent.sha256 && r.data == origin.data && &r.settings == settings);
    if let Some(record) = cached
        && let Ok(model) = StoredModel::load(dir)
    {
        println!("eval paper: reusing {} ({name}, made with the same settings)", dir.display());
        let record = NetworkRecord {
            name: name.to_owned(),
            made_by,
            seconds: record.seconds,
            fraction_retrained: record.fraction_retrained,
        };
        return Ok((model, record));
    }
    let started = Instant::now();
    let (model, fraction_retrained) = make(settings)?;
    let seconds = started.elapsed().as_secs_f64();
    model.save(dir, None, None).with_context(|| format!("writing {}", dir.display()))?;
    let record = FineTuneRecord {
        parent_sha256: origin.parent.sha256.clone(),
        data: origin.data.to_owned(),
        settings: settings.clone(),
        seconds,
        fraction_retrained,
    };
    std::fs::write(&record_path, serde_json::to_vec_pretty(&record)?).context("writing record.json")?;
    Ok((model, NetworkRecord { name: name.to_owned(), made_by, seconds, fraction_retrained }))
}

/// `model`'s output for each volume.
fn denoise_all(model: &StoredModel, inputs: &[Image3], done: &dyn Fn()) -> anyhow::Result<Vec<Image3>> {
    inputs
        .iter()
        .map(|input| {
            let output = denoise_with_burn(model, input)?;
            done();
            Ok(output)
        })
        .collect()
}

/// paper-table1.md, results.json and the figures.
fn write_results(results: &PaperResults, test: &TestScan, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(out.join(name), bytes).with_context(|| format!("writing {}", out.join(name).display()))
    };
    write("paper-table1.md", report::markdown(results).as_bytes())?;
    write("results.json", &serde_json::to_vec_pretty(results)?)?;
    let size = test.truth.grid.size;
    let truth = test.truth.slice(test.lesion_slice());
    let order: Vec<&str> = std::iter::once(OSEM_ALONE).chain(NETWORKS).collect();
    let rows: Vec<Vec<&[f32]>> = [ReconVersion::V2, ReconVersion::V1]
        .into_iter()
        .map(|data| std::iter::once(truth).chain(samples(&results.scores, &order, data)).collect())
        .collect();
    write("paper-slices.png", &slice_grid(&rows, size)?)?;
    let mut points = Vec::new();
    for s in &results.scores {
        let style = if s.data == ReconVersion::V2 { Marker::Filled } else { Marker::Hollow };
        let bias = s.lesion_bias.first().copied().unwrap_or(f64::NAN);
        points.push(Point { network: &s.network, cov: s.liver_cov, bias, style });
    }
    for (network, bias, cov) in PAPER_TABLE {
        points.push(Point { network, cov, bias, style: Marker::Cross });
    }
    write("paper-bias-cov.png", &bias_cov_plot(&points)?)?;
    let v1_full = results.scores_of("v1-net", ReconVersion::V1).map(|s| s.sample_slice.as_slice());
    let sweep_row: Vec<&[f32]> =
        v1_full.into_iter().chain(results.sweep.iter().map(|r| r.dropped.sample_slice.as_slice())).collect();
    write("paper-kse-sweep.png", &slice_grid(&[sweep_row], size)?)?;
    Ok(())
}
