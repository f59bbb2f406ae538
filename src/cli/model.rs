//! `petal model …`: inspecting models without a server.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::model::kse::layer_kse;
use crate::model::tgd_mask::{MaskedLayer, network_mask};
use crate::model::weights::load_convolutions;

/// `petal model kse MODEL --phi φ [--json]`.
pub fn kse(model: &Path, phi: f64, as_json: bool) -> anyhow::Result<()> {
    anyhow::ensure!((0.0..=1.0).contains(&phi), "--phi must be between 0 and 1");
    let convs = load_convolutions(model).with_context(|| format!("reading the weights of {}", model.display()))?;
    let layers: Vec<MaskedLayer<'_>> =
        convs.iter().map(|c| MaskedLayer { name: &c.name, weights: &c.weights, batch_norm: c.batch_norm }).collect();
    let mask = network_mask(&layers, phi);
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
        return Ok(());
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
    Ok(())
}
