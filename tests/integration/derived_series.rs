//! A derived slice of the real PET files: dcmtk and pydicom read it without complaint, its
//! values and SUV-relevant tags survive, and petal recognises it as its own output.

use std::process::Command;

use petal::dicom::derived::{Derivation, derive_instance, is_petal_output};
use petal::dicom::pixels::Frames;
use petal::dicom::suv::suv_bw_factor;

use crate::common::dciodvfy_errors;
use crate::fixtures::real_pet_files;

fn derivation() -> Derivation {
    Derivation {
        series_uid: "2.25.4242".into(),
        series_number: Some(1001),
        series_description: "petal denoised (research use)".into(),
        derivation_description: "petal 2.5D DnCNN, model version 1 (test)".into(),
        device_uid: "2.25.4243".into(),
        software_version: "petal test".into(),
        date: "20261128".into(),
        time: "120000".into(),
    }
}

#[test]
fn derived_real_pet_slices_are_valid_and_keep_suv() {
    let dir = tempfile::tempdir().expect("dir");
    for (i, file) in real_pet_files().iter().enumerate() {
        let source = std::fs::read(file).expect("read");
        let (frames, source_object) = Frames::decode(&source).expect("decode source");
        let values: Vec<f32> = frames.frame_values(1).expect("frame").iter().map(|v| (*v * 0.9) as f32).collect();
        let uid = format!("2.25.4242.{}", i + 1);
        let dataset = petal::dicom::header::read_dataset(&source).expect("source data set");
        let derived = derive_instance(dataset, &values, &uid, &derivation()).expect("derive");
        let path = dir.path().join(format!("derived-{i}.dcm"));
        std::fs::write(&path, &derived).expect("write");

        let (out_frames, object) = Frames::decode(&derived).expect("decode derived");
        let back = out_frames.frame_values(1).expect("frame");
        let largest = values.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        for (v, b) in values.iter().zip(&back) {
            assert!((*v as f64 - b).abs() <= largest / 32767.0, "{v} came back as {b}");
        }
        assert_eq!(suv_bw_factor(&object), suv_bw_factor(&source_object), "SUV tags are copied unchanged");
        assert!(is_petal_output(&object));

        let (before, after) = (dciodvfy_errors(file), dciodvfy_errors(&path));
        let new: Vec<_> = after.iter().filter(|e| !before.contains(*e)).collect();
        assert!(new.is_empty(), "dciodvfy finds errors the source did not have: {new:?}");

        let dump = Command::new("dcmdump").arg(&path).output().expect("run dcmdump (scripts/setup installs dcmtk)");
        let stderr = String::from_utf8_lossy(&dump.stderr);
        assert!(dump.status.success() && !stderr.contains("E:"), "dcmdump: {stderr}");
    }
    let script = "import sys, pydicom\nfor p in sys.argv[1:]:\n    d = pydicom.dcmread(p)\n    a = d.pixel_array\n    assert d.ImageType[0] == 'DERIVED', d.ImageType\n    assert d.ContributingEquipmentSequence[-1].DeviceUID == '2.25.4243'\n    print(p, a.shape, a.dtype)\n";
    let files: Vec<_> = (0..2).map(|i| dir.path().join(format!("derived-{i}.dcm"))).collect();
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let output = Command::new(python).arg("-c").arg(script).args(&files).output().expect("run pydicom (scripts/setup)");
    assert!(output.status.success(), "pydicom: {}", String::from_utf8_lossy(&output.stderr));
}
