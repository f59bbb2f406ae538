//! `petal denoise IN_DIR OUT_DIR` through the real binary: static PET series get a derived
//! series each, other series and non-DICOM files are reported and left alone.

use std::process::Command;

use petal::dicom::derived::is_petal_output;
use petal::dicom::pixels::Frames;

use crate::common::{base_model_dir, ort_dylib_path, petal_binary};
use crate::fixtures::{SeriesSpec, real_pet_files};

#[test]
fn a_folder_of_series_is_denoised_offline() {
    let input = tempfile::tempdir().expect("input");
    let output = tempfile::tempdir().expect("output");
    let pet = SeriesSpec::new(3);
    for (i, bytes) in pet.instances().expect("pet").iter().enumerate() {
        std::fs::create_dir_all(input.path().join("pet")).expect("dir");
        std::fs::write(input.path().join("pet").join(format!("{i}.dcm")), bytes).expect("write");
    }
    let mut ct = SeriesSpec::new(1);
    ct.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2".into();
    std::fs::write(input.path().join("ct.dcm"), ct.instance(0).expect("ct")).expect("write");
    std::fs::copy(&real_pet_files()[0], input.path().join("real.dcm")).expect("copy");
    std::fs::write(input.path().join("notes.txt"), "not DICOM").expect("write");

    let run = Command::new(petal_binary())
        .args(["denoise", &input.path().display().to_string(), &output.path().display().to_string()])
        .args(["--model", &base_model_dir().display().to_string(), "--inference-threads", "1"])
        .env("ORT_DYLIB_PATH", ort_dylib_path())
        .output()
        .expect("run petal denoise");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("3 slices denoised"), "{stdout}");
    assert!(stdout.contains("skipped: not a PET image series"), "{stdout}");
    assert!(stdout.contains("1 files are not DICOM"), "{stdout}");

    let series: Vec<_> = std::fs::read_dir(output.path()).expect("output").map(|e| e.expect("entry").path()).collect();
    assert_eq!(series.len(), 2, "the synthetic and the real PET series: {series:?}");
    let mut slices = 0;
    for dir in series {
        for file in std::fs::read_dir(dir).expect("series") {
            let (_, object) =
                Frames::decode(&std::fs::read(file.expect("file").path()).expect("read")).expect("decode");
            assert!(is_petal_output(&object));
            slices += 1;
        }
    }
    assert_eq!(slices, 4);
}
