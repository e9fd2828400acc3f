//! `relprop info MODEL`: architecture, size and training metadata of a zoo model.

use super::error::{CliError, CliResult};
use super::models::architecture;
use relprop::nn::Module;
use relprop::zoo::pretrained;

/// Prints what is known about the model and its embedded weights.
pub fn run(name: &str) -> CliResult {
    if super::models::is_onnx(name) {
        return match super::models::load_any(name, None)? {
            super::models::AnyModel::Onnx(net) => super::info_graph::run(&net),
            super::models::AnyModel::Zoo(_) => Err(CliError::internal("not an ONNX model")),
        };
    }
    let arch = architecture(name)?;
    if !arch.is_embedded() {
        return published(arch);
    }
    let model =
        pretrained::load(arch).map_err(|e| CliError::internal(format!("embedded weights: {e}")))?;
    let ckpt = pretrained::checkpoint(arch).map_err(|e| CliError::internal(e.to_string()))?;
    let [c, h, w] = arch.input_shape();
    outln!("model        {name}");
    outln!("input        [N, {c}, {h}, {w}] grey values in [0, 1]");
    outln!("parameters   {}", model.parameter_count());
    match ckpt.meta.held_out_accuracy {
        Some(a) => outln!("held-out     {:.2}%", 100.0 * a),
        None => outln!("held-out     (not recorded)"),
    }
    outln!("trained on   {}", ckpt.meta.data);
    outln!(
        "recipe       {} epochs, seed {}, {}",
        ckpt.meta.epochs,
        ckpt.meta.seed,
        ckpt.meta.notes
    );
    outln!("layers");
    for line in model.describe().lines() {
        outln!("  {line}");
    }
    Ok(())
}

/// An ImageNet model: its input, size and where its weights come from (no download).
fn published(arch: relprop::zoo::Architecture) -> CliResult {
    use relprop::zoo::imagenet;
    let model = arch.build(0);
    let [c, h, w] = arch.input_shape();
    outln!("model        {}", arch.name());
    outln!(
        "input        [N, {c}, {h}, {w}] RGB in [0, 1] (any size; photos: resize 256, crop 224)"
    );
    outln!("parameters   {}", model.parameter_count());
    if arch == relprop::zoo::Architecture::EfficientnetLite0 {
        use relprop::zoo::efficientnet::{build, BatchNorms};
        let published = build(BatchNorms::Separate, &mut relprop::core::Rng::new(0));
        let published_count: usize = published
            .net
            .params()
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.value.numel())
            .sum();
        outln!(
            "batchnorms   folded into the {} convolutions they follow when the weights load ({published_count} parameters as published)",
            published.pairs.len()
        );
    }
    outln!("classes      {} (ImageNet)", arch.classes());
    let state = match imagenet::cached_pth() {
        Ok(_) => "in the cache (SHA-256 checked)".to_string(),
        Err(e) => e.to_string(),
    };
    outln!(
        "weights      {} from {}: {state}",
        imagenet::PTH_NAME,
        imagenet::PACKAGE
    );
    outln!("layers");
    for line in model.describe().lines() {
        outln!("  {line}");
    }
    Ok(())
}
