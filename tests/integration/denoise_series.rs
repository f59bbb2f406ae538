//! One series through the pipeline core: assembled, denoised by the engine, written back as
//! a derived series. With a network whose noise branch is zero the output must equal the
//! input, which checks that the intensity normalisation is inverted exactly.

use std::sync::Arc;

use petal::dicom::Uid;
use petal::dicom::derived::is_petal_output;
use petal::dicom::pixels::Frames;
use petal::dicom::suv::suv_bw_factor;
use petal::inference::{InferenceEngine, InferenceSettings};
use petal::jobs::denoise::denoise_series::{DerivedSeriesSettings, denoise_series};
use petal::science::model::directory::StoredModel;
use petal::science::model::weights::{Tensor32, names};

use crate::common::{ort_dylib_path, small_model};
use crate::fixtures::{SeriesSpec, real_pet_files};

fn engine() -> InferenceEngine {
    let settings =
        InferenceSettings { ort_dylib_path: ort_dylib_path(), intra_threads: 1, ..InferenceSettings::default() };
    InferenceEngine::start_onnx(&settings).expect("ONNX Runtime (run scripts/setup)")
}

/// The small model with conv8 zeroed: it predicts no noise, so it returns its input.
fn identity_model() -> Arc<StoredModel> {
    let model = small_model(2);
    let mut weights = model.weights.clone();
    for name in [names::conv_weight(8), names::conv_bias(8)] {
        let shape = weights.require(&name).expect("conv8").shape.clone();
        weights.insert(name, Tensor32::filled(shape, 0.0));
    }
    Arc::new(StoredModel::new(model.config, weights).expect("model"))
}

fn settings() -> DerivedSeriesSettings {
    DerivedSeriesSettings {
        uid_root: Uid::parse("1.2.826.0.1.3680043.10.1234").expect("root"),
        label: "petal denoised (research use):".into(),
        series_number_offset: 1000,
        model_version: Some(1.into()),
        device_uid: "2.25.77".into(),
        uid_seed: None,
        strength: petal::domain::DenoiseStrength::STANDARD,
    }
}

fn values(part10: &[u8]) -> Vec<f64> {
    Frames::decode(part10).expect("decode").0.frame_values(1).expect("frame")
}

fn assert_same_values(source: &[u8], derived: &[u8]) {
    let (a, b) = (values(source), values(derived));
    let largest = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(&b) {
        // One quantisation step of the derived slice, plus float rounding of the transform.
        assert!((x - y).abs() <= largest / 32767.0 + 1e-4 * largest, "{x} became {y}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_comes_back_as_a_derived_series_with_its_values_when_the_model_predicts_no_noise() {
    let engine = engine();
    let spec = SeriesSpec::new(5);
    let mut sources = spec.instances().expect("instances");
    sources.reverse(); // arrival order does not matter
    let result = denoise_series(&engine, identity_model(), &sources, &settings()).await.expect("denoise");
    assert_eq!(result.instances.len(), 5);
    assert!(result.series_uid.starts_with("1.2.826.0.1.3680043.10.1234."));
    for (z, derived) in result.instances.iter().enumerate() {
        let source = spec.instance(z).expect("source");
        assert_same_values(&source, derived);
        let (_, object) = Frames::decode(derived).expect("decode");
        let get = |tag| object.get(tag).and_then(|e| e.to_str().ok()).map(|s| s.trim_matches(['\0', ' ']).to_owned());
        assert_eq!(get(dicom_dictionary_std::tags::SERIES_INSTANCE_UID), Some(result.series_uid.clone()));
        assert_eq!(get(dicom_dictionary_std::tags::SERIES_NUMBER).as_deref(), Some("1003"));
        assert_eq!(
            get(dicom_dictionary_std::tags::IMAGE_POSITION_PATIENT),
            Some(format!("-100\\-100\\{}", z as f64 * 3.0)),
            "slice {z} keeps its position"
        );
        assert!(is_petal_output(&object));
    }

    // A real network changes the values, and every output is still a finite, readable slice.
    let denoised = denoise_series(&engine, Arc::new(small_model(3)), &sources, &settings()).await.expect("denoise");
    let changed =
        denoised.instances.iter().zip(spec.instances().expect("instances")).any(|(d, s)| values(d) != values(&s));
    assert!(changed, "the network left every value unchanged");
}

/// Each real PET file is a one-slice series: denoised with its edge slice replicated on
/// both sides, keeping values (identity model) and the SUV-relevant header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_single_slice_pet_is_denoised_with_edge_replication() {
    let engine = engine();
    for file in real_pet_files() {
        let source = std::fs::read(&file).expect("read");
        let result = denoise_series(&engine, identity_model(), std::slice::from_ref(&source), &settings())
            .await
            .expect("denoise");
        assert_eq!(result.instances.len(), 1);
        assert_same_values(&source, &result.instances[0]);
        let (_, before) = Frames::decode(&source).expect("source");
        let (_, after) = Frames::decode(&result.instances[0]).expect("derived");
        assert_eq!(suv_bw_factor(&after), suv_bw_factor(&before));
    }
}

/// A strength below standard keeps that share of the network's change, voxel by voxel, and
/// the derived series says which strength made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_strength_keeps_its_share_of_the_networks_change_and_says_so() {
    use petal::domain::DenoiseStrength;
    let engine = engine();
    let spec = SeriesSpec::new(4);
    let sources = spec.instances().expect("instances");
    let model = Arc::new(small_model(3));
    let full = denoise_series(&engine, model.clone(), &sources, &settings()).await.expect("standard");
    let half_settings = DerivedSeriesSettings { strength: DenoiseStrength::new(0.5).expect("0.5"), ..settings() };
    let half = denoise_series(&engine, model, &sources, &half_settings).await.expect("half");
    let mut moved = 0.0f64;
    for (z, (full, half)) in full.instances.iter().zip(&half.instances).enumerate() {
        let source = values(&spec.instance(z).expect("source"));
        let (full, half) = (values(full), values(half));
        let largest = source.iter().chain(&full).fold(0.0f64, |m, v| m.max(v.abs()));
        for ((s, f), h) in source.iter().zip(&full).zip(&half) {
            // Two quantisation steps (both derived slices are rounded), plus float rounding.
            let expected = s + 0.5 * (f - s);
            assert!((h - expected).abs() <= 2.0 * largest / 32767.0 + 1e-4 * largest, "{s} → {f}: half gave {h}");
            moved = moved.max((f - s).abs());
        }
    }
    assert!(moved > 0.0, "the network changed nothing, so the blend was not tested");

    let text = |part10: &[u8], tag| {
        let (_, object) = Frames::decode(part10).expect("decode");
        object
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    };
    use dicom_dictionary_std::tags::{DERIVATION_DESCRIPTION, SERIES_DESCRIPTION};
    assert!(text(&half.instances[0], SERIES_DESCRIPTION).starts_with("petal denoised (research use): [0.50]"));
    assert!(text(&half.instances[0], DERIVATION_DESCRIPTION).contains("strength 0.50 = 0.50"));
    assert!(!text(&full.instances[0], SERIES_DESCRIPTION).contains('['), "standard is not named in the description");
    assert!(text(&full.instances[0], DERIVATION_DESCRIPTION).contains("strength standard = 1.00"));
}
