//! One series through the network: Part 10 instances in, derived Part 10 instances out.

use std::collections::HashMap;

use dicom_object::InMemDicomObject;
use std::sync::Arc;

use crate::dicom::Uid;
use crate::dicom::derived::{Derivation, DerivedError, derive_instance};
use crate::dicom::uid::UidError;
use crate::dicom::volume::{Normalisation, Slice, VolumeError, assemble};
use crate::domain::{DenoiseStrength, ModelVersionId};
use crate::inference::{InferenceEngine, InferenceError, Volume as WindowVolume};
use crate::science::model::directory::StoredModel;

/// What the derived series says about itself (the rest comes from the source slices).
#[derive(Debug, Clone)]
pub struct DerivedSeriesSettings {
    /// Root of every UID petal creates.
    pub uid_root: Uid,
    /// Prefixed to the source's SeriesDescription (the default says "research use").
    pub label: String,
    /// Added to the source's SeriesNumber.
    pub series_number_offset: i32,
    /// The model version's id, for the description.
    pub model_version: Option<ModelVersionId>,
    /// The model version's DICOM UID (DeviceUID).
    pub device_uid: String,
    /// When set, the derived UIDs are derived from it (and the source UIDs), so repeating
    /// the work gives the same UIDs; when `None`, they are random.
    pub uid_seed: Option<String>,
    /// Share of the network's change kept; named in the descriptions unless standard.
    pub strength: DenoiseStrength,
}

impl DerivedSeriesSettings {
    /// A UID for `what` (e.g. "series" or a source SOP Instance UID).
    fn uid_for(&self, what: &str) -> Result<Uid, UidError> {
        match &self.uid_seed {
            Some(seed) => Uid::derived_under(&self.uid_root, &format!("{seed}/{what}")),
            None => Uid::generate_under(&self.uid_root),
        }
    }
}

/// The derived instances and how intensities were handled.
#[derive(Debug)]
pub struct DenoisedSeries {
    pub series_uid: String,
    /// Part 10 files, one per source slice, in slice order.
    pub instances: Vec<Vec<u8>>,
    pub normalisation: Normalisation,
}

#[derive(Debug, thiserror::Error)]
pub enum DenoiseError {
    #[error("the series cannot be made into a volume: {0}")]
    Volume(#[from] VolumeError),
    #[error("inference failed: {0}")]
    Inference(#[from] InferenceError),
    #[error("writing the derived series: {0}")]
    Derived(#[from] DerivedError),
    #[error("making UIDs: {0}")]
    Uid(#[from] UidError),
}

/// Denoises the series made of `sources` (Part 10 bytes, any order) with `model`.
pub async fn denoise_series(
    engine: &InferenceEngine,
    model: Arc<StoredModel>,
    sources: &[Vec<u8>],
    settings: &DerivedSeriesSettings,
) -> Result<DenoisedSeries, DenoiseError> {
    // Each source is parsed once: its decoded slice goes into the volume, its data set is
    // copied into the derived instance.
    let mut slices = Vec::with_capacity(sources.len());
    let mut datasets = HashMap::new();
    for bytes in sources {
        let (slice, dataset) = Slice::with_dataset(bytes)?;
        datasets.insert(slice.sop_instance_uid.clone(), dataset);
        slices.push(slice);
    }
    let volume = assemble(slices)?;
    let normalisation = volume.normalisation;
    let (rows, columns) = (volume.slices[0].rows as usize, volume.slices[0].columns as usize);
    let data: Vec<f32> =
        volume.slices.iter().flat_map(|s| s.values.iter().map(|v| normalisation.forward(*v))).collect();
    let input = WindowVolume::new(volume.slices.len(), rows, columns, data).map_err(InferenceError::from)?;
    let mut output = engine.denoise_volume(model.clone(), input).await?.into_data();
    if settings.strength != DenoiseStrength::STANDARD {
        // The blend needs the input again: normalise it anew rather than keep a second copy
        // of the volume through inference.
        let input: Vec<f32> =
            volume.slices.iter().flat_map(|s| s.values.iter().map(|v| normalisation.forward(*v))).collect();
        settings.strength.blend_into(&input, &mut output);
    }

    let first = datasets.get(&volume.slices[0].sop_instance_uid).ok_or(VolumeError::Empty)?;
    let derivation = derivation(first, &model, settings)?;
    let plane = rows * columns;
    let mut instances = Vec::with_capacity(volume.slices.len());
    for (z, slice) in volume.slices.iter().enumerate() {
        // Duplicate SOP Instance UIDs would have failed assembly (duplicate positions) or
        // left one data set for two slices; refuse rather than guess.
        let dataset = datasets.remove(&slice.sop_instance_uid).ok_or_else(|| {
            VolumeError::Unreadable(slice.sop_instance_uid.clone(), "two slices share this SOP Instance UID".into())
        })?;
        let values: Vec<f32> = output[z * plane..(z + 1) * plane].iter().map(|v| normalisation.inverse(*v)).collect();
        let uid = settings.uid_for(&slice.sop_instance_uid)?;
        instances.push(derive_instance(dataset, &values, uid.as_str(), &derivation)?);
    }
    Ok(DenoisedSeries { series_uid: derivation.series_uid, instances, normalisation })
}

fn derivation(
    first_source: &InMemDicomObject,
    model: &StoredModel,
    settings: &DerivedSeriesSettings,
) -> Result<Derivation, DenoiseError> {
    let text = |tag| crate::dicom::header::text(first_source, tag);
    let description = text(dicom_dictionary_std::tags::SERIES_DESCRIPTION).unwrap_or_default();
    let series_number = text(dicom_dictionary_std::tags::SERIES_NUMBER)
        .and_then(|n| n.parse::<i32>().ok())
        .map(|n| n.saturating_add(settings.series_number_offset));
    let version = settings.model_version.map(|v| format!("model version {v}")).unwrap_or_else(|| "model".to_owned());
    let now = chrono::Utc::now();
    // A strength other than standard is named right after the label, so it survives the
    // 64-character cut.
    let label = match settings.strength {
        DenoiseStrength::STANDARD => settings.label.clone(),
        strength => format!("{} [{strength}]", settings.label),
    };
    let mut series_description = if description.is_empty() { label } else { format!("{label} {description}") };
    // LO holds 64 characters.
    series_description = series_description.chars().take(64).collect();
    Ok(Derivation {
        series_uid: settings.uid_for("series")?.as_str().to_owned(),
        series_number,
        series_description,
        derivation_description: format!(
            "Denoised by petal (2.5D DnCNN, {version}, weights sha256 {}, strength {} = {:.2}); research use",
            &model.sha256[..16.min(model.sha256.len())],
            settings.strength,
            settings.strength.value()
        ),
        device_uid: settings.device_uid.clone(),
        software_version: format!("petal {}", env!("CARGO_PKG_VERSION")),
        date: now.format("%Y%m%d").to_string(),
        time: now.format("%H%M%S").to_string(),
    })
}
