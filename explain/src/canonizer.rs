//! Canonizers rewrite a recorded pass into an equivalent one that LRP rules can explain.
//!
//! [`BatchNormFold`] folds an eval-mode BatchNorm into the conv or linear layer before it,
//! `w' = w * g / sqrt(var + eps)`, `b' = (b - mean) * g / sqrt(var + eps) + beta`, and turns
//! the BatchNorm node into an identity, so the affine rules see one layer with the same
//! outputs. Residual sums need no rewriting: the composites give `add` nodes the Norm rule.

use relprop_core::{Error, NodeId, Op, Result, Tape, Tensor};

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
        let mut leaves: Vec<(NodeId, Tensor)> = vec![];
        let mut ops: Vec<(NodeId, Op)> = vec![];
        for (id, node) in tape.nodes().iter().enumerate() {
            let Op::BatchNorm2d {
                x,
                weight,
                bias,
                stats,
            } = &node.op
            else {
                continue;
            };
            let layer = tape.node(*x)?;
            let (w, b) = match &layer.op {
                Op::Conv2d { w, b: Some(b), .. } | Op::Linear { w, b: Some(b), .. } => (*w, *b),
                _ => {
                    return Err(Error::invalid(
                        "batchnorm-fold",
                        format!(
                            "{} does not follow a conv or linear layer with a bias",
                            node.describe()
                        ),
                    ))
                }
            };
            if stats.from_batch || uses[*x] != 1 || uses[w] != 1 || uses[b] != 1 {
                return Err(Error::invalid(
                    "batchnorm-fold",
                    format!(
                        "{} cannot be folded (training mode, or its layer's values are shared)",
                        node.describe()
                    ),
                ));
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
            let folded_b: Vec<f32> = tape
                .value(b)?
                .data()
                .iter()
                .zip(stats.mean.data())
                .zip(scale.iter().zip(beta))
                .map(|((&b, &m), (&s, &be))| (b - m) * s + be)
                .collect();
            leaves.push((w, Tensor::from_vec(folded_w, wv.shape())?));
            leaves.push((b, Tensor::from_vec(folded_b, &[scale.len()])?));
            // The BatchNorm node becomes an identity (a reshape to its own shape).
            ops.push((
                id,
                Op::Reshape {
                    x: *x,
                    shape: node.value.shape().to_vec(),
                },
            ));
        }
        if leaves.is_empty() {
            return Ok(tape.clone());
        }
        tape.rewrite(&leaves, &ops)
    }
}
