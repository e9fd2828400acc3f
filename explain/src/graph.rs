//! The recorded graph as Graphviz DOT: each node's op, shape, the rule a composite gives
//! it and, after an explanation, the relevance that reached it. The picture of the tape
//! that the backward walk visits, bottom (input) to top (logits).
//!
//! ```
//! use relprop_core::Tensor;
//! use relprop_explain::{graph_dot, Composite, Seed, Targets};
//! use relprop_zoo::{pretrained, Architecture};
//!
//! let model = pretrained::load(Architecture::Lenet5).unwrap();
//! let x = Tensor::zeros(&[1, 1, 28, 28]);
//! let walk = (Targets::Class(3), Seed::OneHot);
//! let dot = graph_dot(&model, &x, &Composite::epsilon_plus(1e-6), Some(&walk))?;
//! assert!(dot.starts_with("digraph relprop {"));
//! assert!(dot.contains("features.conv2") && dot.contains("rule: zplus"));
//! # Ok::<(), relprop_core::Error>(())
//! ```

use crate::audit::per_sample_sums;
use crate::composite::{Composite, RuleMap};
use crate::method::record;
use crate::seed::{Seed, Targets};
use relprop_core::{Result, Signals, Tape, Tensor};
use relprop_nn::Module;
use std::fmt::Write;

/// Records `model` on `x` (canonized by `composite`), resolves the composite's rules and,
/// when `walk` gives targets and a seed, walks back from the logits; returns the graph as
/// DOT with the relevance sum of the first sample at every node.
pub fn graph_dot(
    model: &dyn Module,
    x: &Tensor,
    composite: &Composite,
    walk: Option<&(Targets, Seed)>,
) -> Result<String> {
    let mut rec = record(model, x)?;
    rec.tape = composite.canonize(&rec.tape)?;
    let rules = composite.resolve(&rec.tape);
    let signals = match walk {
        Some((targets, seed)) => {
            let t = targets.resolve(rec.logits())?;
            let built = seed.build(rec.logits(), &t)?;
            Some(rec.walk(&built.seed, &rules)?.1)
        }
        None => None,
    };
    Ok(tape_dot(
        &rec.tape,
        &composite.name,
        &rules,
        signals.as_ref(),
    ))
}

/// The DOT text of `tape`: every computed node and the model's input (weights and other
/// constants are left out), labelled with its op, its shape per sample, the rule `rules`
/// gives it (`derivative` when none) and, with `signals`, the relevance sum of sample 0.
pub fn tape_dot(
    tape: &Tape,
    rules_name: &str,
    rules: &RuleMap,
    signals: Option<&Signals>,
) -> String {
    let nodes = tape.nodes();
    let shown = |id: usize| {
        let node = &nodes[id];
        !node.op.inputs().is_empty() || node.label.as_deref() == Some("input")
    };
    let mut dot = String::new();
    let _ = writeln!(dot, "digraph relprop {{");
    let _ = writeln!(dot, "  rankdir=BT;");
    let _ = writeln!(dot, "  label=\"rules: {}\";", escape(rules_name));
    let _ = writeln!(
        dot,
        "  node [shape=box, fontname=\"monospace\", fontsize=10];"
    );
    for (id, node) in nodes.iter().enumerate().filter(|&(id, _)| shown(id)) {
        let name = node.label.clone().unwrap_or_else(|| format!("#{id}"));
        let shape = node.value.shape().get(1..).unwrap_or(&[]);
        let rule = match node.op.inputs().is_empty() {
            true => "none (input)".to_string(),
            false => rules.rule_name(id).unwrap_or_else(|| "derivative".into()),
        };
        let mut text = format!(
            "{name}\\nop: {}\\nshape: {shape:?}\\nrule: {rule}",
            node.op.name()
        );
        if let Some(s) = signals {
            let sum = s.get(id).map(|r| per_sample_sums(r)[0]).unwrap_or(0.0);
            let _ = write!(text, "\\nR sum: {sum:+.4}");
        }
        let _ = writeln!(
            dot,
            "  n{id} [label=\"{}\"];",
            escape_keeping_newlines(&text)
        );
    }
    for (id, node) in nodes.iter().enumerate().filter(|&(id, _)| shown(id)) {
        for input in node.op.inputs().into_iter().filter(|&i| shown(i)) {
            let _ = writeln!(dot, "  n{input} -> n{id};");
        }
    }
    dot.push_str("}\n");
    dot
}

/// Escapes a string for a quoted DOT label.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// As [`escape`], keeping the `\n` line breaks this module writes.
fn escape_keeping_newlines(s: &str) -> String {
    s.split("\\n").map(escape).collect::<Vec<_>>().join("\\n")
}
