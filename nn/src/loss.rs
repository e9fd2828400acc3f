//! Losses recorded on the tape, and accuracy.
//!
//! Cross-entropy is built from `log_softmax` (log-sum-exp, so finite for any finite logits)
//! times a constant target mask, summed and scaled by `-1/n`: four ordinary nodes whose
//! exact derivative is the familiar `(softmax - target) / n`.

use relprop_core::{Error, NodeId, Op, Result, Tape, Tensor};

/// `(n, classes)` of a logits node, which must be `[n, classes]` with `n > 0`.
fn batch_and_classes(tape: &Tape, logits: NodeId, op: &'static str) -> Result<(usize, usize)> {
    match *tape.value(logits)?.shape() {
        [n, c] if n > 0 && c > 0 => Ok((n, c)),
        ref s => Err(Error::shape(
            op,
            &[s],
            "logits must be [batch, classes] with a non-empty batch",
        )),
    }
}

/// `-(1/n) * sum(target * log_softmax(logits))`, with `target` a constant `[n, classes]`.
fn weighted_nll(tape: &mut Tape, logits: NodeId, target: Tensor, n: usize) -> Result<NodeId> {
    let log_p = tape.log_softmax(logits, 1)?;
    let t = tape.constant(target);
    let picked = tape.mul(log_p, t)?;
    let total = tape.sum(picked, &[0, 1], false)?;
    tape.record(Op::MulScalar(total, -1.0 / n as f32))
}

/// Softmax cross-entropy with class-index targets, averaged over the batch (PyTorch's
/// `F.cross_entropy`). `logits` is `[n, classes]`; returns a scalar node.
///
/// A target outside `0..classes` or a length mismatch is an error.
pub fn cross_entropy(tape: &mut Tape, logits: NodeId, targets: &[usize]) -> Result<NodeId> {
    let (n, c) = batch_and_classes(tape, logits, "cross_entropy")?;
    if targets.len() != n {
        return Err(Error::invalid(
            "cross_entropy",
            format!("{} targets for a batch of {n}", targets.len()),
        ));
    }
    let mut onehot = vec![0.0; n * c];
    for (i, &t) in targets.iter().enumerate() {
        if t >= c {
            return Err(Error::invalid(
                "cross_entropy",
                format!("target {t} of sample {i} is not a class of {c}"),
            ));
        }
        onehot[i * c + t] = 1.0;
    }
    weighted_nll(tape, logits, Tensor::from_vec(onehot, &[n, c])?, n)
}

/// Softmax cross-entropy against target distributions `[n, classes]` (soft labels, mixup,
/// distillation), averaged over the batch: `-(1/n) sum_i sum_c p_ic log softmax(z_i)_c`.
pub fn soft_cross_entropy(
    tape: &mut Tape,
    logits: NodeId,
    target_probs: &Tensor,
) -> Result<NodeId> {
    let (n, c) = batch_and_classes(tape, logits, "soft_cross_entropy")?;
    if target_probs.shape() != [n, c] {
        return Err(Error::shape(
            "soft_cross_entropy",
            &[&[n, c], target_probs.shape()],
            "the target probabilities must have the logits' shape",
        ));
    }
    weighted_nll(tape, logits, target_probs.clone(), n)
}

/// Fraction of rows of `logits` `[n, classes]` whose largest entry is at the target class.
///
/// Returns 0 for an empty batch and NaN when `logits` is not `[targets.len(), classes]`.
pub fn accuracy(logits: &Tensor, targets: &[usize]) -> f32 {
    if logits.rank() != 2 || logits.shape()[0] != targets.len() {
        return f32::NAN;
    }
    if targets.is_empty() {
        return 0.0;
    }
    match logits.argmax(1) {
        Ok(pred) => {
            let hits = pred.iter().zip(targets).filter(|(p, t)| p == t).count();
            hits as f32 / targets.len() as f32
        }
        Err(_) => f32::NAN,
    }
}
