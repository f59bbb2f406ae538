//! `petal train-base OUT_DIR`: trains the base network (the paper's v1-net) and writes a
//! model directory (weights, config, ONNX graph, report with loss curve and held-out
//! metrics). Resumes from its last checkpoint when run again with the same settings, and
//! leaves a finished directory of the same settings as it is. `petal eval paper` trains
//! its v1-net and v2-net through [`train_into_directory`].

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::progress::bar;
use crate::app::config::TrainBaseArgs;
use crate::dicom::series_image::series_image;
use crate::science::image::Grid;
use crate::science::image::Image3;
use crate::science::model::config::DnCnnConfig;
use crate::science::model::directory::StoredModel;
use crate::science::model::onnx::export_folded;
use crate::science::simulation::acquisition::ScannerModel;
use crate::science::simulation::anatomy::Anatomy;
use crate::science::training::base::data::SimulatedData;
use crate::science::training::base::loss_plot::loss_curve_png;
use crate::science::training::base::report::{
    HeldOutLevel, HeldOutMetrics, KernelRoom, ROOM_PHI, ReportContext, by_level, evaluate, kernel_room,
    kernel_room_markdown, report_markdown,
};
use crate::science::training::base::reserve::ReserveSettings;
use crate::science::training::base::run::LearningRateDecay;
use crate::science::training::base::{BaseTrainingSettings, TrainingPair, train_base};

pub fn run(args: &TrainBaseArgs) -> anyhow::Result<()> {
    let command = std::iter::once("petal".to_owned()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ");
    let trained = train_into_directory(args, &command)?;
    if trained.reused {
        println!(
            "{} already holds a model trained with these settings ({} steps); --fresh trains it again",
            args.output.display(),
            args.steps
        );
    } else {
        println!("{}", trained.report);
        println!("model written to {}", args.output.display());
    }
    Ok(())
}

/// What [`train_into_directory`] left in the model directory.
pub struct TrainedDirectory {
    pub report: String,
    /// The directory already held a model of these settings; nothing was trained.
    pub reused: bool,
}

/// metrics.json: the held-out figures per count level, and per realization.
#[derive(serde::Serialize)]
struct HeldOutFigures<'a> {
    levels: &'a [HeldOutLevel],
    realizations: &'a [HeldOutMetrics],
    kernel_room: &'a KernelRoom,
}

/// What training.json records of a finished run.
#[derive(serde::Serialize, serde::Deserialize)]
struct TrainingRecord {
    seconds: f64,
    losses: Vec<crate::science::training::base::checkpoint::LossPoint>,
    /// The settings and data of the run (as checkpoints name them) and its step count:
    /// a run asked again with both equal has nothing to do.
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    steps: Option<usize>,
}

/// Trains the base network as `args` say and writes its model directory; `command` is the
/// command line the report names.
pub fn train_into_directory(args: &TrainBaseArgs, command: &str) -> anyhow::Result<TrainedDirectory> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.lr_decay_share) && args.lr_decay_factor > 0.0,
        "--lr-decay-share must lie in [0, 1] and --lr-decay-factor be positive"
    );
    anyhow::ensure!(args.lesion_weight >= 1.0, "--lesion-weight must be at least 1");
    anyhow::ensure!((0.0..1.0).contains(&args.reserve_share), "--reserve-share must lie in [0, 1)");
    let config = DnCnnConfig::scaled(args.width_multiplier);
    config.validate().context("--width-multiplier")?;
    let start_from = args.init_from.as_deref().map(|dir| starting_model(dir, args, &config)).transpose()?;
    let settings = BaseTrainingSettings {
        config,
        steps: args.steps,
        batch: args.batch,
        patch: args.patch,
        learning_rate: args.learning_rate,
        decay: LearningRateDecay { final_share: args.lr_decay_share, factor: args.lr_decay_factor },
        checkpoint_every: args.checkpoint_every,
        lesion_share: args.lesion_share,
        lesion_weight: args.lesion_weight,
        channel_sparsity: args.channel_sparsity,
        reserve: (args.reserve_share > 0.0).then_some(ReserveSettings {
            share: args.reserve_share,
            activation_floor: args.reserve_activation_floor,
            outgoing_scale: args.reserve_outgoing_scale,
        }),
        batch_norm_batches: args.batch_norm_batches,
        seed: args.seed,
        start_from,
    };
    let started = Instant::now();
    let (pairs, held_out, mut data_description) = training_data(args)?;
    data_description.push_str(&training_description(args));
    println!("petal train-base: {} training pairs ready in {:.0} s", pairs.len(), started.elapsed().as_secs_f64());
    // Everything but the step count: a run asked for more steps resumes where it stopped.
    let fingerprint = serde_json::to_string(&(
        &settings.config,
        settings.batch,
        settings.patch,
        settings.learning_rate,
        settings.decay,
        settings.seed,
        settings.lesion_share,
        settings.batch_norm_batches,
        settings.start_from.as_ref().map(|m| &m.sha256),
        &data_description,
    ))?;
    if args.fresh {
        crate::science::training::base::checkpoint::clear(&args.output)?;
    } else if let Some(report) = finished_run(args, &fingerprint) {
        return Ok(TrainedDirectory { report, reused: true });
    }

    let progress = bar(args.steps as u64, "train-base");
    let mut recent = Vec::new();
    let outcome = train_base(&pairs, &settings, &args.output, &fingerprint, &mut |step, loss| {
        recent.push(loss);
        if recent.len() > 50 {
            recent.remove(0);
        }
        progress.set_position(step as u64);
        progress.set_message(format!("loss {:.5}", recent.iter().sum::<f64>() / recent.len() as f64));
    })?;
    progress.finish_and_clear();
    if let Some(step) = outcome.resumed_from {
        println!("resumed from the checkpoint at step {step}");
    }

    let metrics = evaluate(&outcome.model, &held_out).context("evaluating on the held-out study")?;
    let levels = by_level(&metrics);
    let context = ReportContext {
        command,
        data: &data_description,
        seconds: outcome.seconds,
        device: outcome.device.as_str(),
        losses: &outcome.losses,
        held_out: &held_out.name,
        batch_norm_batches: args.batch_norm_batches,
        lesion_weight: args.lesion_weight,
        started_from: settings.start_from.as_ref().zip(args.init_from.as_deref()),
    };
    let room = kernel_room(&outcome.model, &held_out, &levels, ROOM_PHI).context("measuring the room for TGD")?;
    let report = report_markdown(&outcome.model, &context, &levels) + &kernel_room_markdown(&room);
    let onnx = export_folded(&outcome.model.config, &outcome.model.weights).context("exporting ONNX")?;
    outcome.model.save(&args.output, Some(&onnx), Some(&report)).context("writing the model directory")?;
    std::fs::write(args.output.join("loss.png"), loss_curve_png(&outcome.losses)?).context("writing loss.png")?;
    std::fs::write(
        args.output.join("metrics.json"),
        serde_json::to_vec_pretty(&HeldOutFigures { levels: &levels, realizations: &metrics, kernel_room: &room })?,
    )
    .context("writing metrics.json")?;
    let record = TrainingRecord {
        seconds: outcome.seconds,
        losses: outcome.losses,
        fingerprint: Some(fingerprint),
        steps: Some(args.steps),
    };
    std::fs::write(args.output.join("training.json"), serde_json::to_vec(&record)?).context("writing training.json")?;
    crate::science::training::base::checkpoint::clear(&args.output)?;
    Ok(TrainedDirectory { report, reused: false })
}

/// The model `--init-from` names: of the widths asked for, and not the output directory
/// (which the run overwrites, so running the command again would not start where it did).
fn starting_model(dir: &Path, args: &TrainBaseArgs, config: &DnCnnConfig) -> anyhow::Result<StoredModel> {
    let same_directory = match (dir.canonicalize(), args.output.canonicalize()) {
        (Ok(from), Ok(output)) => from == output,
        _ => false,
    };
    anyhow::ensure!(
        !same_directory,
        "--init-from {} is the output directory: copy the model elsewhere first",
        dir.display()
    );
    let model = StoredModel::load(dir).with_context(|| format!("--init-from {}", dir.display()))?;
    anyhow::ensure!(
        model.config == *config,
        "--init-from {}: its widths {:?} are not those of --width-multiplier {} ({:?})",
        dir.display(),
        model.config.widths(),
        args.width_multiplier,
        config.widths()
    );
    Ok(model)
}

/// The report of a finished run in `args.output` with these settings and step count.
fn finished_run(args: &TrainBaseArgs, fingerprint: &str) -> Option<String> {
    let record: TrainingRecord =
        serde_json::from_slice(&std::fs::read(args.output.join("training.json")).ok()?).ok()?;
    let same = record.fingerprint.as_deref() == Some(fingerprint) && record.steps == Some(args.steps);
    let complete = args.output.join("model.safetensors").is_file() && args.output.join("config.json").is_file();
    if same && complete { std::fs::read_to_string(args.output.join("report.md")).ok() } else { None }
}

/// Training pairs, the held-out pair, and a description of both for the report.
fn training_data(args: &TrainBaseArgs) -> anyhow::Result<(Vec<TrainingPair>, TrainingPair, String)> {
    if let Some(dir) = &args.pairs {
        let mut pairs = dicom_pairs(dir)?;
        anyhow::ensure!(pairs.len() >= 2, "{} needs at least two pairs: the last is held out", dir.display());
        let held_out = pairs.pop().context("a held-out pair")?;
        let description = format!("{} real pairs from {} (held out: {})", pairs.len(), dir.display(), held_out.name);
        return Ok((pairs, held_out, description));
    }
    let levels = args.count_levels.clone();
    anyhow::ensure!(levels.iter().all(|l| *l > 0.0 && *l <= 1.0), "--count-levels must lie in (0, 1]");
    args.geometry.validate()?;
    let data = SimulatedData {
        scanner: args.geometry.scanner(),
        anatomies: args.sections.iter().map(|s| s.anatomy()).collect(),
        ..SimulatedData::original(args.geometry.grid(args.size, args.slices), args.recon, args.seconds_per_bed, levels)
    };
    data.check_field_of_view(args.seed, args.patients + 1)
        .context("the simulated patients do not fit the field of view (--size × --pixel-mm)")?;
    let progress = bar(args.patients + 1, "simulating");
    let mut pairs = Vec::new();
    for seed in args.seed..args.seed + args.patients {
        pairs.push(data.pair(seed));
        progress.inc(1);
    }
    let held_out = data.held_out_pair(args.seed + args.patients, args.held_out_realizations)?;
    progress.finish_and_clear();
    let mut description = format!(
        "{} simulated patients (seeds {}..{}), {}×{}×{}, OSEM {}, {} s/bed, inputs at {:?} of the counts, target = noiseless reconstruction, {} % of the patches drawn around a lesion",
        args.patients,
        args.seed,
        args.seed + args.patients - 1,
        args.size,
        args.size,
        args.slices,
        args.recon.name(),
        args.seconds_per_bed,
        data.count_levels,
        args.lesion_share * 100.0
    );
    // Only what differs from the original simulator is named, so its runs keep their fingerprint.
    if data.grid != Grid::new(args.size, args.slices) {
        description.push_str(&format!(", {} × {} mm voxels", data.grid.pixel_mm, data.grid.slice_mm));
    }
    if data.scanner != ScannerModel::default() {
        description.push_str(&format!(", {} mm scanner resolution", data.scanner.detector_blur_fwhm_mm));
    }
    if data.anatomies != [Anatomy::FittedTorso] {
        let names: Vec<String> =
            data.anatomies.iter().map(|a| if a.is_fitted() { "fit".to_owned() } else { a.label() }).collect();
        description.push_str(&format!(", sections {} in turn", names.join(", ")));
    }
    Ok((pairs, held_out, description))
}

/// What the run changes in the loss and the network beyond plain MSE, for the report and the
/// fingerprint (on simulated and real pairs alike). Only what is set is named, so runs of
/// plain MSE keep their fingerprint.
fn training_description(args: &TrainBaseArgs) -> String {
    let mut description = String::new();
    if args.lesion_weight != 1.0 {
        description.push_str(&format!(", lesion voxels weighted ×{} in the loss", args.lesion_weight));
    }
    if args.channel_sparsity > 0.0 {
        description.push_str(&format!(", group lasso ×{} on input channels", args.channel_sparsity));
    }
    if args.reserve_share > 0.0 {
        description.push_str(&format!(
            ", {} % of each layer's channels held in reserve (emitting {} and read at {} of their start)",
            args.reserve_share * 100.0,
            args.reserve_activation_floor,
            args.reserve_outgoing_scale
        ));
    }
    description
}

/// Reads a DICOM series folder as a normalised volume on a square grid.
fn read_series(folder: &Path) -> anyhow::Result<Image3> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))? {
        let path = entry?.path();
        if path.is_file() {
            files.push(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
        }
    }
    Ok(series_image(&files).with_context(|| format!("reading the series in {}", folder.display()))?.image)
}

/// Pairs from `dir/<name>/input` and `dir/<name>/target` (same geometry), sorted by name.
pub fn dicom_pairs(dir: &Path) -> anyhow::Result<Vec<TrainingPair>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("input").is_dir() && p.join("target").is_dir())
        .collect();
    names.sort();
    anyhow::ensure!(!names.is_empty(), "{} holds no <pair>/input and <pair>/target folders", dir.display());
    names
        .iter()
        .map(|path| {
            let input = read_series(&path.join("input"))?;
            let target = read_series(&path.join("target"))?;
            anyhow::ensure!(input.grid == target.grid, "{}: input and target differ in geometry", path.display());
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Ok(TrainingPair { name, inputs: vec![(1.0, input)], target, regions: None, train_slices: None })
        })
        .collect()
}
