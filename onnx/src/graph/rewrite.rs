//! Loading: check the graph, fold constants, resolve weights, and rewrite the graph into
//! the form LRP rules expect (see the module docs of `graph`).

use super::error::ImportError;
use super::layer::{self, ConvPads, Layer};
use super::value::Const;
use super::{fold, GraphNode, OnnxNet, SUPPORTED_OPS};
use crate::reader::OnnxModel;
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

/// Merges pairs of nodes into one layer: Conv + BatchNorm, MatMul + Add of a constant,
/// zero Pad + Conv. A merged node takes over the second node's output name.
fn fuse(net: &mut OnnxNet) -> Result<(), ImportError> {
    loop {
        let uses = readers(net);
        let producer: HashMap<&str, usize> = net
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.node.outputs[0].as_str(), i))
            .collect();
        let mut merge: Option<(usize, usize)> = None; // (first, second): second is removed
        for (j, n) in net.nodes.iter().enumerate() {
            let Some(&i) = n.node.inputs.first().and_then(|x| producer.get(x.as_str())) else {
                continue;
            };
            if uses.get(&net.nodes[i].node.outputs[0]) != Some(&1) {
                continue;
            }
            let first = &net.nodes[i];
            let ok = match (&first.layer, &n.layer, n.node.op_type.as_str()) {
                (Layer::Conv(_), Layer::Norm(_), _) => true,
                (Layer::Linear(l), Layer::Plain, "Add")
                    if first.node.op_type == "MatMul" && l.b.is_none() =>
                {
                    matches!(n.node.inputs.get(1).and_then(|b| net.consts.get(b)), Some(Const::F(t)) if t.numel() == l.w.value.shape()[0])
                }
                (Layer::Plain, Layer::Conv(c), _) if first.node.op_type == "Pad" => {
                    matches!(c.pads, ConvPads::Explicit(_))
                        && pad_to_conv(net, &first.node).is_some()
                }
                _ => false,
            };
            if ok {
                merge = Some((i, j));
                break;
            }
        }
        let Some((i, j)) = merge else { return Ok(()) };
        let second = net.nodes[j].clone();
        let first_label = net.nodes[i].label.clone();
        match (&mut net.nodes[i].layer, &second.layer) {
            (Layer::Conv(c), Layer::Norm(bn)) => {
                layer::fold_norm(c, bn, &second.label)?;
                net.notes.push(format!(
                    "BatchNormalization `{}` folded into `{first_label}`",
                    second.label
                ));
            }
            (Layer::Linear(l), _) => {
                let b = match net.consts.get(&second.node.inputs[1]) {
                    Some(Const::F(t)) => t
                        .reshape(&[t.numel()])
                        .map_err(|e| ImportError::invalid(&second.label, e.to_string()))?,
                    _ => unreachable_merge(&second.label)?,
                };
                l.b = Some(relprop_nn::Param::new(second.node.inputs[1].clone(), b));
                net.notes.push(format!(
                    "Add `{}` became the bias of `{first_label}`",
                    second.label
                ));
            }
            (Layer::Plain, _) => {
                // Pad then Conv: the conv (second) absorbs the padding and keeps its place.
                let [t, l, b, r] = pad_to_conv(net, &net.nodes[i].node).unwrap_or([0; 4]);
                let mut conv = second.clone();
                if let Layer::Conv(c) = &mut conv.layer {
                    if let ConvPads::Explicit(p) = &mut c.pads {
                        *p = [p[0] + t, p[1] + l, p[2] + b, p[3] + r];
                    }
                }
                conv.node.inputs[0] = net.nodes[i].node.inputs[0].clone();
                net.notes.push(format!(
                    "Pad `{first_label}` became the padding of `{}`",
                    conv.label
                ));
                net.nodes[j] = conv;
                net.nodes.remove(i);
                continue;
            }
            _ => unreachable_merge(&second.label).map(|_| ())?,
        }
        net.nodes[i].node.outputs = second.node.outputs.clone();
        net.nodes.remove(j);
    }
}

fn unreachable_merge(label: &str) -> Result<relprop_core::Tensor, ImportError> {
    Err(ImportError::invalid(label, "internal: unexpected merge"))
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
