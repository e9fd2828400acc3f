//! `relprop explain --layer LABEL` and `--neuron LABEL:INDEX`: maps at a labelled layer,
//! and walks that start at one unit of an intermediate layer.

use super::error::{CliError, CliResult};
use super::explain::{sample_sum, ExplainArgs};
use super::input::Input;
use super::models::AnyModel;
use relprop::core::Tensor;
use relprop::explain::{explain_layers, Method, Neuron, Targets};

/// The map to write (at `--layer`, else the input's in the input's shape) and, for an
/// input map, the map to draw.
pub fn run(
    args: &ExplainArgs,
    method: &Method,
    model: &AnyModel,
    input: &Input,
    targets: &Targets,
) -> CliResult<(Tensor, Option<Tensor>)> {
    let neuron = args.neuron.as_deref().map(Neuron::parse).transpose()?;
    let at_layer = args.layer.as_ref().filter(|_| args.method != "grad-cam");
    let maps = explain_layers(
        model.module(),
        &input.batch,
        targets,
        method,
        neuron.as_ref(),
    )?;
    let n = input.batch.shape()[0];
    let start = match &neuron {
        Some(nr) => format!("unit {} of {}", nr.index, nr.label),
        None => "class".into(),
    };
    let (map, drawn) = match at_layer {
        Some(label) => {
            let map = maps.at(label).cloned().ok_or_else(|| {
                CliError::input(format!(
                    "the walk does not reach a layer labelled '{label}' (`relprop info` lists the labels; a layer above the explained neuron gets nothing)"
                ))
            })?;
            (map, None)
        }
        None => (maps.input.reshape(&input.shape)?, Some(maps.input.clone())),
    };
    let place = at_layer.map_or("input".to_string(), |l| format!("layer {l}"));
    for i in 0..n.min(16) {
        let what = match maps.targets.get(i) {
            Some(t) => format!("class {t}"),
            None => start.clone(),
        };
        outln!(
            "sample {i}: explained {what}, relevance sum at {place} {:+.4}",
            sample_sum(&map, i, n)
        );
    }
    if n > 16 {
        outln!("... {} more samples", n - 16);
    }
    if args.audit {
        out!("{}", maps.audit);
    }
    if !map.all_finite() {
        return Err(CliError::input(
            "the map is not finite (is the input finite?)",
        ));
    }
    Ok((map, drawn))
}
