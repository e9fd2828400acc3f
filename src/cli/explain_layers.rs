//! `relprop explain --layer LABEL` and `--neuron LABEL:INDEX`: maps at a labelled layer,
//! and walks that start at one unit of an intermediate layer.

use super::error::{CliError, CliResult};
use super::explain::{sample_sum, ExplainArgs};
use super::input::Input;
use super::models::AnyModel;
use relprop::core::Tensor;
use relprop::explain::batching::{chunk_len, chunk_targets, join_audits};
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
    let n = input.batch.shape()[0];
    let start = match &neuron {
        Some(nr) => format!("unit {} of {}", nr.index, nr.label),
        None => "class".into(),
    };
    if let Targets::PerSample(v) = targets {
        Targets::check_count(v.len(), n)?;
    }
    // Chunked like `explain`: only the requested map of each chunk is kept, not the maps
    // of every layer for the whole batch.
    let (mut maps, mut explained, mut audits) = (Vec::new(), Vec::new(), Vec::new());
    let chunk_size = chunk_len(&input.batch);
    for first in (0..n).step_by(chunk_size) {
        let end = (first + chunk_size).min(n);
        let chunk = input.batch.batch_range(first, end)?;
        let t = chunk_targets(targets, first, end);
        let part = explain_layers(model.module(), &chunk, &t, method, neuron.as_ref())?;
        maps.push(match at_layer {
            Some(label) => part.at(label).cloned().ok_or_else(|| {
                CliError::input(format!(
                    "the walk does not reach a layer labelled '{label}' (`relprop info` lists the labels; a layer above the explained neuron gets nothing)"
                ))
            })?,
            None => part.input,
        });
        explained.extend(part.targets);
        audits.push((first, part.audit));
    }
    let joined = Tensor::concat_batch(&maps)?;
    let (map, drawn) = match at_layer {
        Some(_) => (joined, None),
        None => (joined.reshape(&input.shape)?, Some(joined)),
    };
    let place = at_layer.map_or("input".to_string(), |l| format!("layer {l}"));
    for i in 0..n.min(16) {
        let what = match explained.get(i) {
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
        out!("{}", join_audits(audits)?);
    }
    if !map.all_finite() {
        return Err(CliError::input(
            "the map is not finite (is the input finite?)",
        ));
    }
    Ok((map, drawn))
}
