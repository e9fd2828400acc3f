//! Loading: check the graph, fold constants, resolve weights, and rewrite the graph into
//! the form LRP rules expect (see the module docs of `graph`).

use super::error::ImportError;
use super::layer::{self, ConvPads, Layer};
use super::value::Const;
use super::{fold, GraphNode, OnnxNet, SUPPORTED_OPS};
use crate::reader::OnnxModel;
use relprop_core::Tensor;
use std::collections::{HashMap, HashSet};

/// Builds the importable graph from a decoded model.
pub(super) fn import(model: &OnnxModel, name: &str) -> Result<OnnxNet, ImportError> {
    let g = &model.graph;
    let [input] = g.inputs.as_slice() else {
        return Err(ImportError::invalid(
            "graph",
            format!("the model must have one input, not {}", g.inputs.len()),
        ));
    };
    let [output] = g.outputs.as_slice() else {
        return Err(ImportError::invalid(
            "graph",
            format!("the model must have one output, not {}", g.outputs.len()),
        ));
    };
    let mut consts: HashMap<String, Const> = HashMap::new();
    for (n, t) in &g.initializers {
        consts.insert(n.clone(), Const::from_tensor(t, n)?);
    }
    // Names defined so far: every node may read only these (a cycle or a missing input
    // shows up as a read before the definition).
    let mut defined: HashSet<String> = consts.keys().cloned().collect();
    defined.insert(input.name.clone());
    let mut labels: HashSet<String> = HashSet::new();
    let mut nodes = Vec::new();
    for (i, node) in g.nodes.iter().enumerate() {
        let mut label = if node.name.is_empty() {
            format!("{}_{i}", node.op_type)
        } else {
            node.name.clone()
        };
        if !labels.insert(label.clone()) {
            label = format!("{label}_{i}");
            labels.insert(label.clone());
        }
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(ImportError::Unsupported {
                op: format!("{}.{}", node.domain, node.op_type),
                node: label,
            });
        }
        if !SUPPORTED_OPS.contains(&node.op_type.as_str()) {
            return Err(ImportError::Unsupported {
                op: node.op_type.clone(),
                node: label,
            });
        }
        if let Some(missing) = node
            .inputs
            .iter()
            .find(|n| !n.is_empty() && !defined.contains(n.as_str()))
        {
            return Err(ImportError::invalid(
                &label,
                format!("input `{missing}` is not defined before this node (missing, or a cycle)"),
            ));
        }
        if node.outputs.is_empty() {
            return Err(ImportError::invalid(&label, "the node has no output"));
        }
        // Fold what is constant now; what reads the input's shape is folded at run time.
        let inputs: Vec<Option<Const>> =
            node.inputs.iter().map(|n| consts.get(n).cloned()).collect();
        let all_const = node
            .inputs
            .iter()
            .zip(&inputs)
            .all(|(n, c)| n.is_empty() || c.is_some());
        if all_const && fold::FOLDABLE.contains(&node.op_type.as_str()) {
            let c = fold::eval(node, &label, &inputs)?;
            consts.insert(node.outputs[0].clone(), c);
            defined.insert(node.outputs[0].clone());
            continue;
        }
        defined.extend(node.outputs.iter().cloned());
        let arg = |k: usize| inputs.get(k).and_then(Option::as_ref);
        let name_of = |k: usize, suffix: &str| {
            node.inputs
                .get(k)
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("{label}.{suffix}"))
        };
        let layer = match node.op_type.as_str() {
            "Conv" => Layer::Conv(layer::conv(
                node,
                &label,
                [&name_of(1, "weight"), &name_of(2, "bias")],
                arg(1),
                arg(2),
            )?),
            "Gemm" => Layer::Linear(layer::gemm(
                node,
                &label,
                [&name_of(1, "weight"), &name_of(2, "bias")],
                arg(1),
                arg(2),
            )?),
            "MatMul" => Layer::Linear(layer::matmul(&label, &name_of(1, "weight"), arg(1))?),
            "BatchNormalization" => Layer::Norm(layer::batch_norm(
                node,
                &label,
                [&name_of(1, "weight"), &name_of(2, "bias")],
                [arg(1), arg(2), arg(3), arg(4)],
            )?),
            _ => Layer::Plain,
        };
        nodes.push(GraphNode {
            node: node.clone(),
            label,
            layer,
        });
    }
    if !defined.contains(output.name.as_str()) {
        return Err(ImportError::invalid(
            "graph",
            format!("the output `{}` is not computed by any node", output.name),
        ));
    }
    let mut net = OnnxNet {
        name: name.to_string(),
        input: input.name.clone(),
        input_dims: input.dims.clone(),
        output: output.name.clone(),
        nodes,
        consts,
        notes: vec![],
    };
    drop_trailing_softmax(&mut net);
    fuse(&mut net)?;
    Ok(net)
}

/// How many nodes read each value (the graph output counts as a reader).
fn readers(net: &OnnxNet) -> HashMap<String, usize> {
    let mut count: HashMap<String, usize> = HashMap::new();
    for n in &net.nodes {
        for i in &n.node.inputs {
            *count.entry(i.clone()).or_default() += 1;
        }
    }
    *count.entry(net.output.clone()).or_default() += 1;
    count
}

/// Explanations start at the logits: a softmax that makes the output is dropped.
fn drop_trailing_softmax(net: &mut OnnxNet) {
    let Some(pos) = net
        .nodes
        .iter()
        .rposition(|n| n.node.outputs.first() == Some(&net.output))
    else {
        return;
    };
    let n = &net.nodes[pos];
    if matches!(n.node.op_type.as_str(), "Softmax" | "LogSoftmax") {
        net.notes.push(format!(
            "{} `{}` at the output dropped: predictions and explanations start at the logits",
            n.node.op_type, n.label
        ));
        net.output = n.node.inputs[0].clone();
        net.nodes.remove(pos);
    }
}

/// A pair of nodes that loading merges into one layer.
enum Merge {
    /// BatchNorm (node `bn`) folded into the convolution before it.
    Norm { conv: usize, bn: usize },
    /// `Add` of a constant (node `add`) as the bias of the `MatMul` before it.
    Bias {
        linear: usize,
        add: usize,
        bias: Tensor,
    },
    /// A zero `Pad` (node `pad`) as extra padding `[top, left, bottom, right]` of a conv.
    Pad {
        pad: usize,
        conv: usize,
        pads: [usize; 4],
    },
}

/// The next pair to merge: the second node reads the first, which nothing else reads.
fn next_merge(net: &OnnxNet) -> Option<Merge> {
    let uses = readers(net);
    let producer: HashMap<&str, usize> = net
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.node.outputs[0].as_str(), i))
        .collect();
    for (j, n) in net.nodes.iter().enumerate() {
        let Some(&i) = n.node.inputs.first().and_then(|x| producer.get(x.as_str())) else {
            continue;
        };
        let first = &net.nodes[i];
        if uses.get(&first.node.outputs[0]) != Some(&1) {
            continue;
        }
        match (&first.layer, &n.layer, n.node.op_type.as_str()) {
            (Layer::Conv(_), Layer::Norm(_), _) => return Some(Merge::Norm { conv: i, bn: j }),
            (Layer::Linear(l), Layer::Plain, "Add")
                if first.node.op_type == "MatMul" && l.b.is_none() =>
            {
                let out = l.w.value.shape()[0];
                if let Some(Const::F(t)) = n.node.inputs.get(1).and_then(|b| net.consts.get(b)) {
                    if let Ok(bias) = t.reshape(&[out]) {
                        return Some(Merge::Bias {
                            linear: i,
                            add: j,
                            bias,
                        });
                    }
                }
            }
            (Layer::Plain, Layer::Conv(c), _) if first.node.op_type == "Pad" => {
                if let (ConvPads::Explicit(_), Some(pads)) =
                    (&c.pads, pad_to_conv(net, &first.node))
                {
                    return Some(Merge::Pad {
                        pad: i,
                        conv: j,
                        pads,
                    });
                }
            }
            _ => {}
        }
    }
    None
}

/// Merges pairs of nodes into one layer: Conv + BatchNorm, MatMul + Add of a constant,
/// zero Pad + Conv. The merged layer keeps the place and the label of the layer with
/// weights, and writes the pair's output.
fn fuse(net: &mut OnnxNet) -> Result<(), ImportError> {
    while let Some(merge) = next_merge(net) {
        let (keep, drop) = match merge {
            Merge::Norm { conv, bn } => {
                let norm = net.nodes[bn].clone();
                if let (Layer::Conv(c), Layer::Norm(b)) = (&mut net.nodes[conv].layer, &norm.layer)
                {
                    layer::fold_norm(c, b, &norm.label)?;
                }
                let note = format!(
                    "BatchNormalization `{}` folded into `{}`",
                    norm.label, net.nodes[conv].label
                );
                net.notes.push(note);
                (conv, bn)
            }
            Merge::Bias { linear, add, bias } => {
                let name = net.nodes[add].node.inputs[1].clone();
                if let Layer::Linear(l) = &mut net.nodes[linear].layer {
                    l.b = Some(relprop_nn::Param::new(name, bias));
                }
                let note = format!(
                    "Add `{}` became the bias of `{}`",
                    net.nodes[add].label, net.nodes[linear].label
                );
                net.notes.push(note);
                (linear, add)
            }
            Merge::Pad {
                pad,
                conv,
                pads: [t, l, b, r],
            } => {
                if let Layer::Conv(c) = &mut net.nodes[conv].layer {
                    if let ConvPads::Explicit(p) = &mut c.pads {
                        *p = [p[0] + t, p[1] + l, p[2] + b, p[3] + r];
                    }
                }
                // The conv reads what the Pad read, and keeps its own output.
                net.nodes[conv].node.inputs[0] = net.nodes[pad].node.inputs[0].clone();
                let note = format!(
                    "Pad `{}` became the padding of `{}`",
                    net.nodes[pad].label, net.nodes[conv].label
                );
                net.notes.push(note);
                net.nodes.remove(pad);
                continue;
            }
        };
        net.nodes[keep].node.outputs = net.nodes[drop].node.outputs.clone();
        net.nodes.remove(drop);
    }
    Ok(())
}

/// The `[top, left, bottom, right]` zeros of a constant-mode `Pad` on the last two axes of
/// a 4-D value, if that is what the node is (pads from its input or, before opset 11, its
/// attribute).
fn pad_to_conv(net: &OnnxNet, node: &crate::reader::Node) -> Option<[usize; 4]> {
    let a = super::attrs::Attrs::new(node, "");
    if a.string("mode", "constant").ok()? != "constant" {
        return None;
    }
    let value_zero = match node.inputs.get(2).filter(|n| !n.is_empty()) {
        None => true,
        Some(v) => net
            .consts
            .get(v)
            .is_some_and(|c| c.to_tensor().data().iter().all(|&x| x == 0.0)),
    };
    if !value_zero || node.inputs.get(3).is_some_and(|n| !n.is_empty()) {
        return None;
    }
    let pads = match node.inputs.get(1) {
        Some(p) => net.consts.get(p)?.to_ints(),
        None => a.ints("pads").ok()??,
    };
    let [0, 0, t, l, 0, 0, b, r]: [i64; 8] = pads.as_slice().try_into().ok()? else {
        return None;
    };
    let u = |v: i64| usize::try_from(v).ok();
    Some([u(t)?, u(l)?, u(b)?, u(r)?])
}
