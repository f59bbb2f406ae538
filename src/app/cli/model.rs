//! `petal model …`: inspecting, scoring and converting models without a server. MODEL is a
//! model directory (docs/models.md) or the id of a model version in the database.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::app::config::DatabaseArgs;
use crate::domain::ModelVersionId;
use crate::science::model::config::DnCnnConfig;
use crate::science::model::directory::StoredModel;
use crate::science::model::kse::layer_kse;
use crate::science::model::onnx::{self, OnnxForm};
use crate::science::model::tgd_mask::mask_of_convolutions;
use crate::science::model::weights::{ModelWeights, NamedConv};
use crate::storage::models;

/// Loads MODEL: an existing path is a model directory; a number is a version id.
pub async fn resolve(model: &str, database: &DatabaseArgs) -> anyhow::Result<StoredModel> {
    let path = Path::new(model);
    if path.exists() {
        return StoredModel::load(path).with_context(|| format!("reading the model directory {model}"));
    }
    let id: ModelVersionId = model
        .parse::<i64>()
        .map(ModelVersionId::from)
        .map_err(|_| anyhow::anyhow!("{model} is neither a model directory nor a model version id"))?;
    let db = super::database::open_database(database).await?;
    let result = async {
        let version = models::get(&db, id).await?.with_context(|| format!("no model version {id} in the database"))?;
        let weights = models::weights(&db, id).await?.with_context(|| format!("model version {id} has no weights"))?;
        let config: DnCnnConfig =
            serde_json::from_str(&version.config).with_context(|| format!("model version {id}: config"))?;
        StoredModel::from_parts(config, &weights).with_context(|| format!("model version {id}: weights"))
    }
    .await;
    db.close().await;
    result
}

/// `petal model inspect MODEL`.
pub fn inspect(model: &StoredModel) {
    let config = &model.config;
    println!("2.5D DnCNN: {} input slices, width multiplier {}", config.input_slices, config.width_multiplier);
    println!("{:<6} {:>6} {:>6} {:>10} {:>12}", "layer", "in", "out", "batchnorm", "parameters");
    for layer in config.layers() {
        println!(
            "conv{:<2} {:>6} {:>6} {:>10} {:>12}",
            layer.index,
            layer.in_channels,
            layer.out_channels,
            if layer.batch_norm { "yes" } else { "no" },
            layer.parameters()
        );
    }
    println!("trainable parameters: {}", config.parameter_count());
    println!("FLOP per output pixel of a window: {:.3} M", config.flops_per_pixel() / 1e6);
    println!("sha256 (model.safetensors): {}", model.sha256);
}

fn convolutions(weights: &ModelWeights) -> anyhow::Result<Vec<NamedConv>> {
    weights.convolutions().context("reading the convolution weights")
}

/// `petal model kse MODEL --phi φ [--json]`. Only the weights are needed, so a bare
/// .safetensors file, or a directory without config.json, is scored too.
pub async fn kse(model: &str, phi: f64, as_json: bool, database: &DatabaseArgs) -> anyhow::Result<()> {
    anyhow::ensure!((0.0..=1.0).contains(&phi), "--phi must be between 0 and 1");
    let path = Path::new(model);
    let convs = if path.exists() {
        crate::science::model::weights::load_convolutions(path)
            .with_context(|| format!("reading the weights of {model}"))?
    } else {
        convolutions(&resolve(model, database).await?.weights)?
    };
    print_kse(&convs, phi, as_json);
    Ok(())
}

fn print_kse(convs: &[NamedConv], phi: f64, as_json: bool) {
    let mask = mask_of_convolutions(convs, phi);
    let scores: Vec<_> = convs.iter().map(|c| layer_kse(&c.weights)).collect();
    if as_json {
        let layers: Vec<_> = convs
            .iter()
            .zip(&scores)
            .zip(&mask.layers)
            .map(|((conv, kse), mask)| {
                json!({
                    "layer": conv.name,
                    "shape": [conv.weights.out_channels, conv.weights.in_channels],
                    "input_channels": { "sparsity": kse.sparsity, "entropy": kse.entropy, "kse": kse.score },
                    "input_channels_flagged": kse.score.iter().filter(|s| **s < phi).count(),
                    "output_channels_retrained": mask.channels_retrained,
                    "parameters": mask.parameters,
                    "parameters_retrained": mask.parameters_retrained,
                })
            })
            .collect();
        println!("{}", json!({ "phi": phi, "layers": layers, "fraction_retrained": mask.fraction_retrained }));
        return;
    }
    println!(
        "{:<8} {:>10} {:>14} {:>18} {:>12}",
        "layer", "out x in", "inputs < phi", "kernels retrained", "parameters"
    );
    for ((conv, kse), layer) in convs.iter().zip(&scores).zip(&mask.layers) {
        println!(
            "{:<8} {:>10} {:>14} {:>18} {:>12}",
            conv.name,
            format!("{}x{}", conv.weights.out_channels, conv.weights.in_channels),
            kse.score.iter().filter(|s| **s < phi).count(),
            format!("{}/{}", layer.channels_retrained, conv.weights.out_channels),
            format!("{}/{}", layer.parameters_retrained, layer.parameters),
        );
    }
    println!("phi {phi}: {:.1} % of convolution and BatchNorm parameters retrained", mask.fraction_retrained * 100.0);
}

/// `petal model export-onnx MODEL OUT [--folded]`.
pub fn export_onnx(model: &StoredModel, out: &Path, folded: bool) -> anyhow::Result<()> {
    let bytes = if folded {
        onnx::export_folded(&model.config, &model.weights)
    } else {
        onnx::export_faithful(&model.config, &model.weights)
    }
    .context("building the ONNX graph")?;
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} ({} graph, {} bytes) from weights {}",
        out.display(),
        if folded { "folded inference" } else { "faithful" },
        bytes.len(),
        model.sha256
    );
    Ok(())
}

/// `petal model import-onnx IN OUT`.
pub fn import_onnx(input: &Path, out: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let imported = onnx::import(&bytes).with_context(|| format!("importing {}", input.display()))?;
    let model = StoredModel::new(imported.config, imported.weights).context("checking the imported weights")?;
    let report = match imported.form {
        OnnxForm::Faithful => format!("Imported from {} (faithful graph: BatchNorm kept).\n", input.display()),
        OnnxForm::Folded => format!(
            "Imported from {} (folded graph): BatchNorm was folded into the convolutions, so every \
             BatchNorm layer is the identity (γ 1, β 0, running mean 0, running variance 1 − ε). KSE \
             scores the folded kernels; TGD rounds normalise with batch statistics while training.\n",
            input.display()
        ),
    };
    model.save(out, None, Some(&report)).with_context(|| format!("writing the model directory {}", out.display()))?;
    println!("imported {} into {} (sha256 {})", input.display(), out.display(), model.sha256);
    Ok(())
}
