//! Training (burn) and inference (ONNX Runtime on the folded graph) compute the same
//! network: outputs agree within 1e-4 of the output's largest value, on random inputs and
//! on a slab of real PET, for the small test width and the paper's width.

use std::sync::Arc;

use petal::dicom::pixels::Frames;
use petal::inference::{InferenceEngine, InferenceSettings};
use petal::science::model::backend::CpuBackend;
use petal::science::model::burn_denoise::denoise_volume;
use petal::science::model::config::DnCnnConfig;
use petal::science::model::directory::StoredModel;
use petal::science::window::Volume;

use crate::common::{ort_dylib_path, pseudo_random_model};
use crate::fixtures::real_pet_files;

/// The volume denoised by burn, window by window exactly as the engine does.
fn burn_output(model: &StoredModel, volume: &Volume) -> Vec<f32> {
    denoise_volume::<CpuBackend>(model, volume, 4, &Default::default()).expect("burn windows").into_data()
}

async fn assert_agree(engine: &InferenceEngine, model: &StoredModel, volume: Volume, what: &str) {
    let expected = burn_output(model, &volume);
    let found = engine.denoise_volume(Arc::new(model.clone()), volume).await.expect("onnx runtime").into_data();
    assert_eq!(expected.len(), found.len());
    let largest = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = expected.iter().zip(&found).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(largest > 0.0, "{what}: the network output is all zeros");
    assert!(worst <= 1e-4 * largest, "{what}: max |burn − onnx| = {worst}, max |y| = {largest}");
}

/// Uniform noise in [0, 2) from a fixed seed.
fn random_volume(depth: usize, size: usize, seed: u64) -> Volume {
    let mut state = seed;
    let data = (0..depth * size * size)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0
        })
        .collect();
    Volume::new(depth, size, size, data).expect("volume")
}

/// The two real PET slices (and the first again), centre-cropped to `size`, divided by
/// their 99th percentile as the pipeline's robust normalisation would.
fn real_pet_slab(size: usize) -> Volume {
    let slices: Vec<(usize, usize, Vec<f64>)> = real_pet_files()
        .iter()
        .map(|file| {
            let (frames, _) = Frames::decode(&std::fs::read(file).expect("read")).expect("decode");
            let values = frames.frame_values(1).expect("frame 1");
            (frames.rows as usize, frames.columns as usize, values)
        })
        .collect();
    let (rows, columns, _) = slices[0];
    assert!(rows >= size && columns >= size);
    let (top, left) = ((rows - size) / 2, (columns - size) / 2);
    let mut data = Vec::new();
    for (_, _, values) in slices.iter().chain(slices.first()) {
        for r in top..top + size {
            data.extend(values[r * columns + left..r * columns + left + size].iter().map(|v| *v as f32));
        }
    }
    let mut sorted = data.clone();
    sorted.sort_by(f32::total_cmp);
    let scale = sorted[sorted.len() * 99 / 100].max(f32::MIN_POSITIVE);
    Volume::new(3, size, size, data.into_iter().map(|v| v / scale).collect()).expect("volume")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_and_onnx_runtime_agree_for_small_and_paper_widths() {
    let settings =
        InferenceSettings { ort_dylib_path: ort_dylib_path(), intra_threads: 2, ..InferenceSettings::default() };
    let engine = InferenceEngine::start_onnx(&settings).expect("ONNX Runtime (run scripts/setup)");
    for (multiplier, size) in [(0.25, 40), (1.0, 24)] {
        let model = pseudo_random_model(DnCnnConfig::scaled(multiplier), 11);
        assert_agree(&engine, &model, random_volume(5, size, 3), &format!("width {multiplier}, random")).await;
        assert_agree(&engine, &model, real_pet_slab(size), &format!("width {multiplier}, real PET")).await;
    }
}
