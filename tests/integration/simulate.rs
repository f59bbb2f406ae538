//! `petal simulate` end to end: the real binary writes a study, and its DICOM is checked with
//! dicom3tools, read back through petal's volume assembly, and compared with the truth.

use std::path::Path;
use std::process::Command;

use petal::dicom::simulated_study::{TruthSidecar, read_f32_volume};
use petal::dicom::volume::{Slice, assemble};
use petal::science::evaluation::nema::measures::{NemaMeasures, PhantomRois};
use petal::science::simulation::Grid;

use crate::common::{dciodvfy_errors, petal_binary};

/// Runs `petal simulate` at 64 pixels; 8 slices and 2 realizations unless `extra` says otherwise.
fn simulate(output: &Path, seed: u64, extra: &[&str]) {
    let mut defaults = vec!["--size", "64", "--low-count-fraction", "0.25"];
    for (flag, value) in [("--slices", "8"), ("--realizations", "2")] {
        if !extra.contains(&flag) {
            defaults.extend([flag, value]);
        }
    }
    let status = Command::new(petal_binary())
        .arg("simulate")
        .args(defaults)
        .args(["--seed", &seed.to_string()])
        .args(extra)
        .arg(output)
        .status()
        .expect("run petal simulate");
    assert!(status.success(), "petal simulate failed");
}

fn dicom_files(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .expect("series folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_simulated_study_is_valid_dicom_with_suv_one_in_soft_tissue() {
    let dir = tempfile::tempdir().expect("dir");
    simulate(dir.path(), 7, &[]);
    let study = dir.path().join("sim-00007");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(study.join("study.json")).expect("manifest")).expect("json");
    let folders: Vec<&str> =
        manifest["series"].as_array().expect("series").iter().map(|s| s["folder"].as_str().expect("folder")).collect();
    assert_eq!(folders, ["full-count", "n2n-half-a", "n2n-half-b", "low-count-01", "low-count-02"]);
    let descriptions: Vec<&str> = manifest["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| s["description"].as_str().expect("text"))
        .collect();
    assert_eq!(descriptions[1], "PET WB FDG v1 N2N half A");
    assert_eq!(descriptions[3], "PET WB FDG v1 low-count 25% r01");

    // dicom3tools finds no error in any file of any series.
    for folder in &folders {
        let files = dicom_files(&study.join(folder));
        assert_eq!(files.len(), 8, "{folder}: one file per slice");
        for file in &files {
            let errors = dciodvfy_errors(file);
            assert!(errors.is_empty(), "dciodvfy on {}: {errors:?}", file.display());
        }
    }

    // SUVbw from the header: soft tissue reads its true SUV (≈ 1), the liver its own.
    let truth: TruthSidecar =
        serde_json::from_slice(&std::fs::read(study.join("truth/truth.json")).expect("sidecar")).expect("json");
    let grid: Grid = truth.grid;
    let activity = read_f32_volume(&study.join("truth").join(&truth.activity), grid).expect("truth");
    let slices: Vec<Slice> = dicom_files(&study.join("full-count"))
        .iter()
        .map(|f| Slice::from_part10(&std::fs::read(f).expect("read")).expect("slice"))
        .collect();
    let volume = assemble(slices).expect("the full-count series is a volume");
    let factor = volume.slices[0].suv_factor.expect("the header allows SUVbw");
    // Sorted along the normal: slice 0 of the volume is the most inferior, as in the truth.
    let suv: Vec<f32> =
        volume.slices.iter().flat_map(|s| s.values.iter().map(move |v| (f64::from(*v) * factor) as f32)).collect();
    let region_mean = |target: f64| {
        let n = grid.size;
        let mask: Vec<bool> = (0..grid.voxels())
            .map(|i| {
                let (x, y, z) = (i % n, (i / n) % n, i / (n * n));
                // Away from organ edges (blur and post-filter spread them): all neighbours within 2 pixels agree.
                (2..n - 2).contains(&x)
                    && (2..n - 2).contains(&y)
                    && (-2i64..=2).all(|dy| {
                        (-2i64..=2).all(|dx| {
                            let j = (z * n + (y as i64 + dy) as usize) * n + (x as i64 + dx) as usize;
                            (f64::from(activity.data[j]) - target).abs() < 1e-5
                        })
                    })
            })
            .collect();
        let count = mask.iter().filter(|m| **m).count();
        assert!(count > 50, "enough voxels of SUV {target}: {count}");
        suv.iter().zip(&mask).filter(|(_, m)| **m).map(|(v, _)| f64::from(*v)).sum::<f64>() / count as f64
    };
    let soft = region_mean(truth.uptake.soft_tissue);
    assert!(
        (soft / truth.uptake.soft_tissue - 1.0).abs() < 0.1,
        "soft tissue SUV {soft} vs true {}",
        truth.uptake.soft_tissue
    );
    assert!((0.8..1.2).contains(&soft), "soft tissue SUV {soft} is not ≈ 1");
    let liver = region_mean(truth.uptake.liver);
    assert!((liver / truth.uptake.liver - 1.0).abs() < 0.1, "liver SUV {liver} vs true {}", truth.uptake.liver);

    // The noiseless reconstruction is what the series would be without noise: on its own
    // voxels, the same amount of activity and a few tens of percent of error in the series.
    let noiseless =
        read_f32_volume(&study.join("truth").join(&truth.noiseless_reconstruction), grid).expect("noiseless");
    let total = |values: &[f32]| values.iter().map(|v| f64::from(*v)).sum::<f64>();
    let (series_total, noiseless_total) = (total(&suv), total(&noiseless.data));
    assert!((series_total / noiseless_total - 1.0).abs() < 0.05, "{series_total} vs {noiseless_total}");
    let body: Vec<bool> =
        std::fs::read(study.join("truth").join(&truth.body)).expect("body").iter().map(|b| *b != 0).collect();
    let error = petal::science::evaluation::rounds::measures::relative_error(&suv, &noiseless.data, &body);
    assert!((0.01..0.6).contains(&error), "the series' error against the noiseless reconstruction: {error}");
}

#[test]
fn the_same_seed_writes_the_same_files() {
    let (first, second) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    simulate(first.path(), 3, &["--recon", "v2"]);
    simulate(second.path(), 3, &["--recon", "v2"]);
    for folder in ["full-count", "n2n-half-b", "low-count-02"] {
        let (a, b) = (
            dicom_files(&first.path().join("sim-00003").join(folder)),
            dicom_files(&second.path().join("sim-00003").join(folder)),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!(
                std::fs::read(x).expect("a") == std::fs::read(y).expect("b"),
                "{} differs between runs",
                x.display()
            );
        }
    }
}

#[test]
fn impossible_realizations_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let output = Command::new(petal_binary())
        .args(["simulate", "--size", "32", "--slices", "4", "--realizations", "5", "--low-count-fraction", "0.5"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("disjoint parts"), "{stderr}");
}

/// Mean of `values` where `mask` holds.
fn masked_mean(values: &[f32], mask: impl Fn(usize) -> bool) -> f64 {
    let (sum, count) = values
        .iter()
        .enumerate()
        .filter(|(i, _)| mask(*i))
        .fold((0.0, 0usize), |(s, c), (_, v)| (s + f64::from(*v), c + 1));
    assert!(count > 0, "an empty region");
    sum / count as f64
}

#[test]
fn the_nema_phantom_is_valid_dicom_and_its_spheres_recover_with_size() {
    let dir = tempfile::tempdir().expect("dir");
    let flags = ["--phantom", "nema", "--contrast", "8", "--pixel-mm", "5", "--slice-mm", "3", "--fwhm-mm", "6"];
    simulate(dir.path(), 2, &[&flags[..], &["--slices", "16", "--realizations", "1"]].concat());
    let study = dir.path().join("sim-00002");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(study.join("study.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["series"][0]["description"], "PET NEMA IEC v1 full-count");
    for file in dicom_files(&study.join("full-count")) {
        let errors = dciodvfy_errors(&file);
        assert!(errors.is_empty(), "dciodvfy on {}: {errors:?}", file.display());
    }
    let truth: TruthSidecar =
        serde_json::from_slice(&std::fs::read(study.join("truth/truth.json")).expect("sidecar")).expect("json");
    assert_eq!((truth.grid.pixel_mm, truth.grid.slice_mm), (5.0, 3.0));
    let organs: Vec<&str> = truth.lesion_list.iter().map(|l| l.organ.as_str()).collect();
    assert_eq!(
        organs,
        ["sphere 10 mm", "sphere 13 mm", "sphere 17 mm", "sphere 22 mm", "sphere 28 mm", "sphere 37 mm"]
    );
    let truth_dir = study.join("truth");
    let noiseless = read_f32_volume(&truth_dir.join(&truth.noiseless_reconstruction), truth.grid).expect("noiseless");
    let labels = std::fs::read(truth_dir.join(&truth.lesions)).expect("labels");
    let background = std::fs::read(truth_dir.join(&truth.liver)).expect("background");
    assert!(
        labels.iter().filter(|l| **l == 6).count() > labels.iter().filter(|l| **l == 1).count(),
        "sphere 6 is the largest"
    );
    // Read as a physicist reads it: OSEM's own partial volume costs the smallest sphere
    // most, the largest keeps most of its contrast, and the background reads SUV 1.
    let rois = PhantomRois::on(&truth.grid);
    let reference = NemaMeasures::of(&noiseless, &rois, 8.0, f64::INFINITY);
    assert!(
        (0.85..1.05).contains(&reference.background_mean),
        "noiseless background SUV {}",
        reference.background_mean
    );
    let recovery = &reference.crc;
    assert!(recovery[5] > 0.6 && recovery[5] < 1.05, "37 mm sphere CRC {:.2}", recovery[5]);
    assert!(recovery[0] < recovery[5] - 0.2, "10 mm {:.2} vs 37 mm {:.2}", recovery[0], recovery[5]);
    let level = masked_mean(&noiseless.data, |i| background[i] != 0);
    // The series reads SUV 1 in the background through its own header.
    let volume = assemble(
        dicom_files(&study.join("full-count"))
            .iter()
            .map(|f| Slice::from_part10(&std::fs::read(f).expect("read")).expect("slice"))
            .collect(),
    )
    .expect("volume");
    let factor = volume.slices[0].suv_factor.expect("the header allows SUVbw");
    let suv: Vec<f32> =
        volume.slices.iter().flat_map(|s| s.values.iter().map(move |v| (f64::from(*v) * factor) as f32)).collect();
    let series_level = masked_mean(&suv, |i| background[i] != 0);
    assert!((series_level / level - 1.0).abs() < 0.05, "the series' background {series_level} vs noiseless {level}");
}

#[test]
fn a_section_shows_the_liver_at_its_true_length_and_a_too_small_field_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let flags = ["--section", "liver", "--pixel-mm", "6", "--slice-mm", "3", "--fwhm-mm", "6", "--slices", "16"];
    simulate(dir.path(), 5, &[&flags[..], &["--realizations", "1"]].concat());
    let truth: TruthSidecar =
        serde_json::from_slice(&std::fs::read(dir.path().join("sim-00005/truth/truth.json")).expect("sidecar"))
            .expect("json");
    let grid = truth.grid;
    let liver = std::fs::read(dir.path().join("sim-00005/truth").join(&truth.liver)).expect("liver");
    // 48 mm around the liver's centre: every slice holds liver (a fitted 16-slice torso
    // shows the liver on about 5).
    for (z, slice) in liver.chunks_exact(grid.pixels_per_slice()).enumerate() {
        assert!(slice.iter().any(|v| *v != 0), "slice {z} has no liver");
    }
    // A section holds several lesions (2–6 are drawn), all at sites it shows: here the liver.
    assert!(truth.lesion_list.len() >= 2, "{:?}", truth.lesion_list);
    assert!(truth.lesion_list.iter().all(|l| l.organ == "liver"), "{:?}", truth.lesion_list);
    for lesion in &truth.lesion_list {
        assert!((3.0..=15.0).contains(&lesion.radius_mm), "diameter {} mm", 2.0 * lesion.radius_mm);
        assert!(lesion.centre_mm[2].abs() < grid.axial_extent_mm() / 2.0, "lesion out of view: {lesion:?}");
    }
    let uid = |folder: &Path| -> String {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(folder.join("sim-00005/study.json")).expect("manifest"))
                .expect("json");
        manifest["study_uid"].as_str().expect("uid").to_owned()
    };
    let fitted = tempfile::tempdir().expect("dir");
    simulate(fitted.path(), 5, &["--slices", "16", "--realizations", "1"]);
    assert_ne!(uid(dir.path()), uid(fitted.path()), "another geometry is another study");

    let output = Command::new(petal_binary())
        .args(["simulate", "--section", "liver", "--size", "32", "--pixel-mm", "4", "--slices", "4"])
        .arg(dir.path().join("too-small"))
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("field of view") && stderr.contains("pixel size"), "{stderr}");
}
