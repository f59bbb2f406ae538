//! A series whose header lacks the patient's weight and the injected dose cannot be read in
//! SUV, yet it must reach the network at the level the network was trained on. The same
//! simulated series is denoised by the real binary twice, with its SUV header and with
//! weight and dose removed, and the two outputs must agree over the body.

use std::path::{Path, PathBuf};
use std::process::Command;

use dicom_dictionary_std::tags;
use petal::dicom::simulated_study::{Silent, SimulationSettings, write_study};
use petal::dicom::volume::{Normalisation, Slice, assemble};
use petal::science::image::Grid;
use petal::science::simulation::ReconVersion;

use crate::common::{ort_dylib_path, petal_binary};
use crate::learning::shipped_model;

/// Largest voxel-wise NRMSE over the body between the two paths' outputs.
const MOST_NRMSE: f64 = 0.02;

fn dicom_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        walk(folder).into_iter().filter(|p| p.extension().is_some_and(|e| e == "dcm")).collect();
    files.sort();
    files
}

fn walk(folder: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).expect("folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The series in `folder` as one volume (slices in order, values in Bq/ml).
fn volume_of(folder: &Path) -> petal::dicom::volume::Volume {
    let slices = dicom_files(folder)
        .iter()
        .map(|f| Slice::from_part10(&std::fs::read(f).expect("read")).expect("slice"))
        .collect();
    assemble(slices).expect("volume")
}

fn denoise(input: &Path, output: &Path) {
    let run = Command::new(petal_binary())
        .args(["denoise", &input.display().to_string(), &output.display().to_string()])
        .args(["--model", &shipped_model().display().to_string(), "--inference-threads", "1"])
        .env("ORT_DYLIB_PATH", ort_dylib_path())
        .output()
        .expect("run petal denoise");
    assert!(run.status.success(), "{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
}

#[test]
fn a_series_without_weight_or_dose_is_denoised_as_its_suv_twin() {
    let work = tempfile::tempdir().expect("work");
    let settings = SimulationSettings::original(41, Grid::new(64, 16), ReconVersion::V1);
    write_study(&settings, work.path(), &Silent).expect("simulated study");
    let study = work.path().join(settings.study_folder());
    let (with_suv, without_suv) = (work.path().join("in-suv"), work.path().join("in-no-suv"));
    std::fs::create_dir_all(&with_suv).expect("dir");
    std::fs::create_dir_all(&without_suv).expect("dir");
    for file in dicom_files(&study.join("full-count")) {
        let name = file.file_name().expect("name").to_owned();
        std::fs::copy(&file, with_suv.join(&name)).expect("copy");
        let mut object = dicom_object::open_file(&file).expect("open");
        object.remove_element(tags::PATIENT_WEIGHT);
        object.remove_element(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE);
        object.write_to_file(without_suv.join(&name)).expect("write");
    }
    assert!(matches!(volume_of(&with_suv).normalisation, Normalisation::SuvBw { .. }));
    let Normalisation::Robust { scale } = volume_of(&without_suv).normalisation else {
        panic!("without weight and dose the series cannot be read in SUV")
    };
    let Normalisation::SuvBw { factor } = volume_of(&with_suv).normalisation else { unreachable!() };
    // The scale stands in for SUV: 1/factor Bq/ml per SUV.
    let scale_over_suv = scale * factor;
    println!("body-median scale / SUV scale: {scale_over_suv:.3}");

    let (out_suv, out_no_suv) = (work.path().join("out-suv"), work.path().join("out-no-suv"));
    denoise(&with_suv, &out_suv);
    denoise(&without_suv, &out_no_suv);
    let reference = volume_of(&out_suv);
    let other = volume_of(&out_no_suv);
    let body: Vec<bool> =
        std::fs::read(study.join("truth/body.u8")).expect("body mask").iter().map(|b| *b != 0).collect();
    let values = |v: &petal::dicom::volume::Volume| -> Vec<f64> {
        v.slices.iter().flat_map(|s| s.values.iter().map(|x| f64::from(*x))).collect()
    };
    let (a, b) = (values(&reference), values(&other));
    assert_eq!(a.len(), body.len());
    let (mut error, mut energy) = (0.0, 0.0);
    for ((x, y), inside) in a.iter().zip(&b).zip(&body) {
        if *inside {
            error += (x - y).powi(2);
            energy += x * x;
        }
    }
    let nrmse = (error / energy).sqrt();
    println!("NRMSE over the body, no-SUV path against SUV path: {:.2} %", 100.0 * nrmse);
    assert!(nrmse <= MOST_NRMSE, "NRMSE {:.2} % (scale/SUV {scale_over_suv:.3})", 100.0 * nrmse);
}
