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
