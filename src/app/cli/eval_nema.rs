//! `petal eval nema`: the NEMA IEC body phantom through OSEM and through a model (the
//! science lives in [`crate::science::evaluation::nema`]); writes nema.md and nema.json.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::app::config::EvalNemaArgs;
use crate::science::evaluation::nema::{NemaPlan, NemaScale, evaluate, figures, report};
use crate::science::evaluation::paper::figures::slice_grid;
use crate::science::model::directory::StoredModel;
use crate::science::simulation::ReconVersion;

/// The OSEM version the shipped base model was trained on (models/base/report.md).
const BASE_RECON: ReconVersion = ReconVersion::V1;
/// Realizations and count levels of `--quick`.
const QUICK_REALIZATIONS: usize = 3;
const QUICK_COUNTS_PERCENT: [f64; 2] = [100.0, 25.0];
/// Count levels of the default run: OSEM's background CoV is about 10 % at 50 % and about
/// 21 % at 10 % (docs/results/nema.md).
const DEFAULT_COUNTS_PERCENT: [f64; 4] = [100.0, 50.0, 25.0, 10.0];

pub fn run(args: &EvalNemaArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.contrast > 1.0 && args.contrast <= 50.0,
        "--contrast is the spheres' activity over the background's and must be above 1 (EARL: 4, 8 or 10), not {}",
        args.contrast
    );
    anyhow::ensure!(
        (2..=50).contains(&args.realizations),
        "--realizations must be between 2 and 50, not {}",
        args.realizations
    );
    let percents = match (&args.counts, args.quick) {
        (Some(percents), _) => percents.clone(),
        (None, true) => QUICK_COUNTS_PERCENT.to_vec(),
        (None, false) => DEFAULT_COUNTS_PERCENT.to_vec(),
    };
    anyhow::ensure!(
        !percents.is_empty() && percents.iter().all(|p| *p > 0.0 && *p <= 100.0),
        "--counts are percentages of the full-count scan, above 0 and at most 100"
    );
    let scale =
        if args.quick { NemaScale::quick(QUICK_REALIZATIONS) } else { NemaScale::default_scale(args.realizations) };
    let plan = NemaPlan {
        scale,
        counts: percents.iter().map(|p| p / 100.0).collect(),
        contrast: args.contrast,
        recon: BASE_RECON,
        strength: args.strength,
    };
    let model = StoredModel::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let out = args.out.clone().unwrap_or_else(|| {
        if args.quick { PathBuf::from(format!("eval-nema-{}", plan.scale.name)) } else { PathBuf::from("docs/results") }
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let command = std::iter::once("petal".to_owned()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ");
    let started = Instant::now();
    let (results, slices) = evaluate(&plan, &model, &|step| {
        println!("[{:>5.0} s] {step}", started.elapsed().as_secs_f64());
    })?;
    let markdown = report::markdown(&results, &command);
    let rows: Vec<Vec<&[f32]>> = slices.rows.iter().map(|row| row.iter().map(Vec::as_slice).collect()).collect();
    let files = [
        ("nema.md", markdown.into_bytes()),
        ("nema.json", serde_json::to_vec_pretty(&results)?),
        ("nema-slices.png", slice_grid(&rows, slices.size)?),
        ("nema-crc.png", figures::crc_plot(&results)?),
    ];
    for (name, bytes) in files {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "wrote {} with nema.json, nema-slices.png and nema-crc.png in {:.0} s",
        out.join("nema.md").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
