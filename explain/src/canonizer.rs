//! Canonizers rewrite a recorded pass into an equivalent one that LRP rules can explain.
//!
//! [`BatchNormFold`] folds an eval-mode BatchNorm into the conv or linear layer before it,
//! `w' = w * g / sqrt(var + eps)`, `b' = (b - mean) * g / sqrt(var + eps) + beta`, so the
//! affine rules see one layer with the same outputs. Residual sums need no rewriting: the
//! composites give `add` nodes the Norm rule.
//!
//! A layer with a bias keeps its node: its parameters take the folded values and the
//! BatchNorm node becomes an identity. A layer without a bias (the usual conv before a
//! BatchNorm) needs a bias leaf recorded before it, and a rewrite adds no nodes (every id a
//! caller holds must keep naming the same value) and keeps creation order topological
//! (the backward walk relies on it). So the fold reuses the two nodes it frees: the
//! layer's old node becomes the new bias (a constant leaf, labelled like a bias
//! parameter), and the BatchNorm node, whose value the folded layer reproduces, becomes
//! the folded layer and takes its label. Rules chosen by label and audits see one layer
//! under its own name, and the output keeps its id. The layer moves later in creation
//! order, which matters only for a composite's "first layer"; that is unchanged as long as
//! no other conv or linear layer was recorded between the two nodes, and otherwise the
//! fold is refused rather than risk a different first layer.

use relprop_core::{Edit, Error, NodeId, Op, Result, Tape, Tensor};

/// A rewrite of a recorded pass that keeps its outputs.
pub trait Canonizer: Send + Sync {
    /// Name for audits.
    fn name(&self) -> &str;
    /// The rewritten tape (same node ids, same outputs up to rounding).
    fn apply(&self, tape: &Tape) -> Result<Tape>;
}

/// Folds BatchNorm (eval mode) into the preceding conv/linear layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchNormFold;

/// How many nodes read each node.
fn consumers(tape: &Tape) -> Vec<usize> {
    let mut count = vec![0; tape.len()];
    for node in tape.nodes() {
        for i in node.op.inputs() {
            count[i] += 1;
        }
    }
    count
}

impl Canonizer for BatchNormFold {
    fn name(&self) -> &str {
        "batchnorm-fold"
    }

    fn apply(&self, tape: &Tape) -> Result<Tape> {
        let uses = consumers(tape);
        let mut edits: Vec<Edit> = vec![];
        for (id, node) in tape.nodes().iter().enumerate() {
            if let Op::BatchNorm2d { .. } = node.op {
                edits.extend(fold(tape, &uses, id)?);
            }
        }
        if edits.is_empty() {
            return Ok(tape.clone());
        }
        tape.edit(&edits)
    }
}

/// The edits folding BatchNorm node `id` into the layer it reads.
fn fold(tape: &Tape, uses: &[usize], id: NodeId) -> Result<Vec<Edit>> {
    let node = tape.node(id)?;
    let Op::BatchNorm2d {
        x: layer_id,
        weight,
        bias,
        stats,
    } = &node.op
    else {
        return Ok(vec![]);
    };
    let layer_id = *layer_id;
    let layer = tape.node(layer_id)?;
    let refuse = |why: &str| {
        Err(Error::invalid(
            "batchnorm-fold",
            format!("{} cannot be folded: {why}", node.describe()),
        ))
    };
    let (w, b) = match &layer.op {
        Op::Conv2d { w, b, .. } | Op::Linear { w, b, .. } => (*w, *b),
        _ => return refuse("it does not follow a conv or linear layer"),
    };
    if stats.from_batch {
        return refuse("it normalises with batch statistics (training mode)");
    }
    if uses[layer_id] != 1 || uses[w] != 1 || b.is_some_and(|b| uses[b] != 1) {
        return refuse("its layer's values are shared");
    }
    let (gamma, beta) = (tape.value(*weight)?.data(), tape.value(*bias)?.data());
    let scale: Vec<f32> = stats
        .var
        .data()
        .iter()
        .zip(gamma)
        .map(|(&v, &g)| g / (v + stats.eps).sqrt())
        .collect();
    let wv = tape.value(w)?;
    let per_out = wv.numel() / scale.len().max(1);
    let folded_w: Vec<f32> = wv
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| v * scale[i / per_out])
        .collect();
    let old_b = match b {
        Some(b) => tape.value(b)?.data().to_vec(),
        None => vec![0.0; scale.len()],
    };
    let folded_b: Vec<f32> = old_b
        .iter()
        .zip(stats.mean.data())
        .zip(scale.iter().zip(beta))
        .map(|((&b, &m), (&s, &be))| (b - m) * s + be)
        .collect();
    let folded_w = Tensor::from_vec(folded_w, wv.shape())?;
    let folded_b = Tensor::from_vec(folded_b, &[scale.len()])?;
    if let Some(b) = b {
        // The layer keeps its node; the BatchNorm node becomes an identity (a reshape to
        // its own shape).
        let identity = Op::Reshape {
            x: layer_id,
            shape: node.value.shape().to_vec(),
        };
        return Ok(vec![
            Edit::Value(w, folded_w),
            Edit::Value(b, folded_b),
            Edit::Op(id, identity),
        ]);
    }
    // No bias: the layer's node becomes the bias, the BatchNorm node the folded layer (see
    // the module docs).
    let between = tape.nodes()[layer_id + 1..id]
        .iter()
        .find(|n| matches!(n.op, Op::Conv2d { .. } | Op::Linear { .. }));
    if let Some(other) = between {
        return refuse(&format!(
            "{} was recorded between it and its layer, and the fold would move the layer after it",
            other.describe()
        ));
    }
    let folded = match &layer.op {
        Op::Conv2d { x, spec, .. } => Op::Conv2d {
            x: *x,
            w,
            b: Some(layer_id),
            spec: *spec,
        },
        Op::Linear { x, .. } => Op::Linear {
            x: *x,
            w,
            b: Some(layer_id),
        },
        _ => return refuse("it does not follow a conv or linear layer"),
    };
    let bias_label = layer.label.as_ref().map(|l| format!("{l}.bias"));
    Ok(vec![
        Edit::Value(w, folded_w),
        Edit::Constant(layer_id, folded_b),
        Edit::Label(layer_id, bias_label),
        Edit::Op(id, folded),
        Edit::Label(id, layer.label.clone()),
    ])
}
