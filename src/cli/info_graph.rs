//! `relprop info PATH.onnx`: an imported graph, node by node, with the rule every
//! built-in composite gives each node.

use super::error::{CliError, CliResult};
use relprop::core::Tensor;
use relprop::explain::{record, Composite, COMPOSITE_NAMES};
use relprop::onnx::OnnxNet;

/// Prints the graph: node, op, output shape, and each composite's rule.
pub fn run(net: &OnnxNet) -> CliResult {
    outln!("model        {} (imported from ONNX)", net.name());
    let Some(shape) = net.input_shape() else {
        return Err(CliError::input(format!(
            "{}: the file does not fix the input's size, so the graph's shapes are unknown",
            net.name()
        )));
    };
    let mut one = vec![1];
    one.extend(&shape);
    outln!("input        [N, {}]", join(&shape));
    for note in net.notes() {
        outln!("note         {note}");
    }
    let rec = record(net, &Tensor::zeros(&one))?;
    outln!("output       {} classes (logits)", rec.logits().shape()[1]);
    let maps: Vec<_> = COMPOSITE_NAMES
        .iter()
        .map(|name| {
            let c = Composite::by_name(name, 1e-6, 0.0, 1.0)?;
            Ok((*name, c.resolve(&c.canonize(&rec.tape)?)))
        })
        .collect::<relprop::core::Result<_>>()?;
    outln!("nodes: label, op, output shape per sample, and the rule each composite gives it");
    outln!("| node | op | output | {} |", COMPOSITE_NAMES.join(" | "));
    outln!("|---|---|---|{}", "---|".repeat(COMPOSITE_NAMES.len()));
    for (id, node) in rec.tape.nodes().iter().enumerate() {
        let Some(label) = &node.label else { continue };
        if node.op.inputs().is_empty() {
            continue; // weights and the input
        }
        let rules: Vec<String> = maps
            .iter()
            .map(|(_, map)| map.rule_name(id).unwrap_or_else(|| "derivative".into()))
            .collect();
        outln!(
            "| {label} | {} | [{}] | {} |",
            node.op.name(),
            join(&node.value.shape()[1..]),
            rules.join(" | ")
        );
    }
    Ok(())
}

fn join(d: &[usize]) -> String {
    d.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
