//! `petal denoise IN_DIR OUT_DIR`: the main job offline. Files are grouped by series; each
//! static PET series is denoised with the model and written as a derived series; the others
//! are listed with the reason they are left alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use dicom_dictionary_std::tags;

use crate::app::config::DenoiseArgs;
use crate::dicom::header::{read_dataset, text};
use crate::dicom::series_kind::{DescriptionRules, SeriesKind, classify};
use crate::inference::InferenceEngine;
use crate::jobs::denoise::denoise_series::{DerivedSeriesSettings, denoise_series};
use crate::science::model::directory::StoredModel;

pub async fn run(args: &DenoiseArgs) -> anyhow::Result<()> {
    let model_dir = args.model.clone().unwrap_or_else(|| args.inference.base_model.clone());
    let model = Arc::new(
        StoredModel::load(&model_dir).with_context(|| format!("loading the model from {}", model_dir.display()))?,
    );
    let settings = args.inference.settings();
    let engine = tokio::task::spawn_blocking(move || InferenceEngine::start_onnx(&settings))
        .await
        .context("starting the inference engine")?
        .context("starting ONNX Runtime (run scripts/setup, or set ORT_DYLIB_PATH)")?;

    let mut files = Vec::new();
    collect_files(&args.input, &mut files).with_context(|| format!("reading {}", args.input.display()))?;
    let mut series: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let mut kinds: BTreeMap<String, SeriesKind> = BTreeMap::new();
    let rules = DescriptionRules::default();
    let mut skipped_files = 0;
    for file in &files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        // The header is enough to group and classify; pixels are decoded once, when denoising.
        let Some(uid) = read_dataset(&bytes).ok().and_then(|object| {
            let uid = text(&object, tags::SERIES_INSTANCE_UID)?;
            kinds.entry(uid.clone()).or_insert_with(|| classify(&object, &rules));
            Some(uid)
        }) else {
            skipped_files += 1;
            continue;
        };
        series.entry(uid).or_default().push(bytes);
    }
    println!(
        "petal denoise: {} files, {} series, model {} ({})",
        files.len(),
        series.len(),
        model_dir.display(),
        &model.sha256[..12]
    );
    if skipped_files > 0 {
        println!("  {skipped_files} files are not DICOM images with a series and were skipped");
    }
    let derived_settings = DerivedSeriesSettings {
        uid_root: args.derived.uid_root.clone(),
        label: args.derived.series_label.clone(),
        series_number_offset: args.derived.series_number_offset,
        model_version: None,
        device_uid: crate::storage::models::device_uid(&model.sha256, None, None),
        uid_seed: None,
        strength: args.derived.strength,
    };
    let total = series.len();
    let slices: usize = series
        .iter()
        .filter(|(uid, _)| matches!(kinds.get(*uid), Some(SeriesKind::Denoisable { .. })))
        .map(|(_, sources)| sources.len())
        .sum();
    let bar = super::progress::bar(slices as u64, "denoise");
    let mut failures = 0;
    for (n, (uid, sources)) in series.iter().enumerate() {
        let progress = format!("[{}/{total}]", n + 1);
        match kinds.get(uid) {
            Some(SeriesKind::Denoisable { .. }) => {}
            Some(SeriesKind::NotDenoised { reason }) => {
                bar.suspend(|| println!("{progress} series {uid}: skipped: {reason}"));
                continue;
            }
            None => continue,
        }
        bar.set_message(format!("series {}", n + 1));
        let started = Instant::now();
        match denoise_series(&engine, model.clone(), sources, &derived_settings).await {
            Ok(result) => {
                let dir = args.output.join(&result.series_uid);
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                for (i, instance) in result.instances.iter().enumerate() {
                    let path = dir.join(format!("{:04}.dcm", i + 1));
                    std::fs::write(&path, instance).with_context(|| format!("writing {}", path.display()))?;
                }
                bar.suspend(|| {
                    println!(
                        "{progress} series {uid}: {} slices denoised in {:.1} s -> {}",
                        result.instances.len(),
                        started.elapsed().as_secs_f64(),
                        dir.display()
                    )
                });
            }
            Err(err) => {
                failures += 1;
                bar.suspend(|| println!("{progress} series {uid}: not denoised: {err}"));
            }
        }
        bar.inc(sources.len() as u64);
    }
    bar.finish_and_clear();
    anyhow::ensure!(failures == 0, "{failures} series could not be denoised (reasons above)");
    Ok(())
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
