//! Volume assembly from real DICOM bytes: synthetic series in any order, and the real PET
//! slices (single-slice volumes, normalised to SUVbw from their headers).

use petal::dicom::volume::{Normalisation, Slice, assemble};

use crate::fixtures::{SeriesSpec, real_pet_files};

#[test]
fn a_shuffled_series_assembles_in_slice_order() {
    let series = SeriesSpec::new(5);
    let mut files = series.instances().expect("synthetic series");
    files.reverse();
    files.swap(0, 2);
    let slices: Vec<Slice> = files.iter().map(|f| Slice::from_part10(f).expect("slice")).collect();
    let volume = assemble(slices).expect("volume");
    let order: Vec<String> = volume.slices.iter().map(|s| s.sop_instance_uid.clone()).collect();
    let expected: Vec<String> = (0..5).map(|i| series.sop_instance_uid(i)).collect();
    assert_eq!(order, expected);
    assert!((volume.slice_spacing - 3.0).abs() < 1e-9);
    // The synthetic header has no dose or weight: robust scale, never SUV.
    assert!(matches!(volume.normalisation, Normalisation::Robust { .. }));
    // Per-slice rescale is applied: stored value × 1.5.
    assert!((volume.slices[0].values[1] - 7.0 * 1.5).abs() < 1e-6);
}

#[test]
fn real_pet_slices_normalise_to_suv() {
    for file in real_pet_files() {
        let slice = Slice::from_part10(&std::fs::read(&file).expect("read")).expect("slice");
        let volume = assemble(vec![slice]).expect("a single slice is a volume of one");
        let Normalisation::SuvBw { factor } = volume.normalisation else {
            panic!("{}: the header allows SUVbw", file.display())
        };
        let suv_max = volume.slices[0].values.iter().fold(0.0f32, |m, v| m.max(*v)) as f64 * factor;
        assert!((0.5..50.0).contains(&suv_max), "{}: SUVmax {suv_max}", file.display());
    }
}

#[test]
fn real_pet_slices_without_suv_are_scaled_near_their_suv_level() {
    for file in real_pet_files() {
        let mut slice = Slice::from_part10(&std::fs::read(&file).expect("read")).expect("slice");
        let suv_factor = slice.suv_factor.take().expect("the header allows SUVbw");
        let volume = assemble(vec![slice]).expect("a single slice is a volume of one");
        let Normalisation::Robust { scale } = volume.normalisation else { panic!("no SUV: robust scale") };
        // What the body-median scale reads as SUV 1, in the file's SUV. These are FLT
        // scans, whose soft tissue sits near SUV 0.5 rather than FDG's 1 (0.58 and 0.48
        // here): the scale still lands within a small factor of SUV.
        let one = scale * suv_factor;
        println!("{}: the body-median scale reads SUV {one:.3} as 1", file.display());
        assert!((0.4..2.5).contains(&one), "{}: SUV {one} is read as 1", file.display());
    }
}
