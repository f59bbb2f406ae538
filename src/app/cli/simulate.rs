//! `petal simulate OUT`: writes synthetic whole-body FDG studies (DICOM PET series, ground
//! truth and label maps) for tests, training and the paper's evaluation.

use std::time::Instant;

use anyhow::Context;

use super::progress::{SimulationBar, bar};
use crate::app::config::SimulateArgs;
use crate::dicom::simulated_study::{SimulationSettings, write_study};

pub fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    anyhow::ensure!((16..=512).contains(&args.size), "--size must be between 16 and 512 pixels, not {}", args.size);
    anyhow::ensure!((3..=1024).contains(&args.slices), "--slices must be between 3 and 1024, not {}", args.slices);
    anyhow::ensure!(args.seconds_per_bed > 0.0, "--seconds-per-bed must be positive");
    anyhow::ensure!(
        args.realizations as f64 * args.low_count_fraction <= 1.0 + 1e-9 && args.low_count_fraction > 0.0,
        "--realizations × --low-count-fraction must be ≤ 1: the realizations are disjoint parts of one scan's counts"
    );
    args.geometry.validate()?;
    if let Some(filter) = args.post_filter_mm {
        anyhow::ensure!((0.0..=20.0).contains(&filter), "--post-filter-mm must be between 0 and 20 mm, not {filter}");
    }
    anyhow::ensure!(
        args.contrast > 1.0 && args.contrast <= 50.0,
        "--contrast is the spheres' activity over the background's and must be above 1 (EARL uses 4, 8 or 10), not {}",
        args.contrast
    );
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    for patient in 0..args.patients {
        let settings = SimulationSettings {
            seed: args.seed + patient,
            grid: args.grid(),
            recon: args.recon,
            seconds_per_bed: args.seconds_per_bed,
            realizations: args.realizations,
            low_count_fraction: args.low_count_fraction,
            scanner: args.geometry.scanner(),
            anatomy: args.anatomy(),
            post_filter_mm: args.post_filter_mm,
        };
        let started = Instant::now();
        let progress = SimulationBar(bar(0, &format!("sim-{:05}", settings.seed)));
        let manifest = write_study(&settings, &args.output, &progress)
            .with_context(|| format!("simulating the study for seed {}", settings.seed))?;
        progress.0.finish_and_clear();
        println!(
            "{}: {} series of {}×{}×{} ({}, {} s/bed, {:.1} M counts) in {:.1} s",
            args.output.join(settings.study_folder()).display(),
            manifest.series.len(),
            args.size,
            args.size,
            args.slices,
            args.recon.name(),
            args.seconds_per_bed,
            manifest.series[0].counts / 1e6,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
