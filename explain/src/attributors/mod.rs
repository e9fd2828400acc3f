//! Gradient-based and perturbation baselines: SmoothGrad, Integrated Gradients, Grad-CAM
//! and occlusion.
//!
//! Every method takes the model, an input batch `x` (`[n, c, h, w]`; SmoothGrad and
//! Integrated Gradients accept any `[n, ...]`) and one resolved target class per sample, and
//! returns a map of `x`'s shape. Methods that evaluate the model on many modified copies of
//! the input stack those copies into chunks and run one forward (and backward) pass per
//! chunk, so the per-pass overhead of the tape is paid once per chunk, not once per copy.
//! Random noise and chunking are independent: results do not depend on the chunk size.

mod grad_cam;
mod integrated_gradients;
mod occlusion;
mod smoothgrad;

pub use grad_cam::grad_cam;
pub use integrated_gradients::integrated_gradients;
pub use occlusion::occlusion;
pub use smoothgrad::smoothgrad;

/// Most SmoothGrad samples or integrated-gradients steps per input: far past where the
/// average stops changing, and small enough that `samples x steps` cannot overflow.
pub const MAX_STEPS: usize = 100_000;

use relprop_core::{Error, Exact, NodeId, Result, Signals, Tape, Tensor};
use relprop_nn::{Mode, Module};

/// Input elements per stacked chunk: large enough to amortise a pass, small enough that the
/// tape of a conv net on a chunk stays in the tens of megabytes.
const CHUNK_ELEMS: usize = 1 << 16;
/// Upper bound on the rows of a chunk, whatever the input size.
const MAX_CHUNK_ROWS: usize = 64;

/// The checked shape of an input batch.
#[derive(Clone, Copy, Debug)]
struct Batch {
    /// Number of samples.
    n: usize,
    /// Elements per sample.
    per: usize,
}

impl Batch {
    /// Checks that `x` is a non-empty batch with one target per sample.
    fn check(op: &'static str, x: &Tensor, t: &[usize]) -> Result<Batch> {
        let n = match x.shape().first() {
            Some(&n) if n > 0 => n,
            _ => {
                return Err(Error::shape(
                    op,
                    &[x.shape()],
                    "the input must be a non-empty batch [n, ...]",
                ))
            }
        };
        if t.len() != n {
            return Err(Error::invalid(
                op,
                format!("{} targets were given for {n} samples", t.len()),
            ));
        }
        Ok(Batch {
            n,
            per: x.numel() / n,
        })
    }

    /// Like [`Batch::check`], and the input must be an image batch `[n, c, h, w]`.
    fn check_images(op: &'static str, x: &Tensor, t: &[usize]) -> Result<Batch> {
        if x.rank() != 4 {
            return Err(Error::shape(
                op,
                &[x.shape()],
                "the input must be an image batch [n, c, h, w]",
            ));
        }
        Batch::check(op, x, t)
    }

    /// Rows per stacked chunk for samples of this size.
    fn chunk_rows(&self) -> usize {
        (CHUNK_ELEMS / self.per.max(1)).clamp(1, MAX_CHUNK_ROWS)
    }
}

/// `x`'s shape with the batch dimension replaced by `rows`.
fn stacked_shape(x: &Tensor, rows: usize) -> Vec<usize> {
    let mut shape = x.shape().to_vec();
    shape[0] = rows;
    shape
}

/// Checks that a model output is `[rows, classes]` logits and every target is a class.
fn check_logits(op: &'static str, logits: &Tensor, rows: usize, t: &[usize]) -> Result<usize> {
    let c = match *logits.shape() {
        [r, c] if r == rows => c,
        _ => {
            return Err(Error::shape(
                op,
                &[logits.shape()],
                format!("the model must map {rows} inputs to [{rows}, classes] logits"),
            ))
        }
    };
    if let Some(bad) = t.iter().find(|&&k| k >= c) {
        return Err(Error::invalid(
            op,
            format!("target class {bad} is out of range: the model has {c} classes"),
        ));
    }
    Ok(c)
}

/// A recorded forward pass and the gradient of the target logits at every node.
struct GradientWalk {
    tape: Tape,
    input: NodeId,
    signals: Signals,
}

/// Records `model` on `batch` (one row per target in `t`) and walks back from the target
/// logits with a one-hot seed: row `r`'s signal is the gradient of `logit_{t[r]}` of row `r`.
fn gradient_walk(
    op: &'static str,
    model: &dyn Module,
    batch: Tensor,
    t: &[usize],
) -> Result<GradientWalk> {
    let mut tape = Tape::for_inference();
    let input = tape.leaf(batch);
    let out = model.forward(&mut tape, input, Mode::Eval)?;
    let logits = tape.value(out)?;
    let c = check_logits(op, logits, t.len(), t)?;
    let mut seed = vec![0.0f32; t.len() * c];
    for (row, &k) in t.iter().enumerate() {
        seed[row * c + k] = 1.0;
    }
    let seed = Tensor::from_vec(seed, &[t.len(), c])?;
    let signals = tape.backward(out, &seed, &Exact)?;
    Ok(GradientWalk {
        tape,
        input,
        signals,
    })
}

/// The gradient of each row's target logit with respect to that row of `batch`.
fn target_gradients(
    op: &'static str,
    model: &dyn Module,
    batch: Tensor,
    t: &[usize],
) -> Result<Tensor> {
    let walk = gradient_walk(op, model, batch, t)?;
    walk.signals.get_or_zeros(&walk.tape, walk.input)
}

/// Each row's target logit (a forward pass only; nothing on the tape wants a signal).
fn target_logits(
    op: &'static str,
    model: &dyn Module,
    batch: Tensor,
    t: &[usize],
) -> Result<Vec<f32>> {
    let mut tape = Tape::for_inference();
    let input = tape.constant(batch);
    let out = model.forward(&mut tape, input, Mode::Eval)?;
    let logits = tape.value(out)?;
    let c = check_logits(op, logits, t.len(), t)?;
    Ok(t.iter()
        .enumerate()
        .map(|(row, &k)| logits.data()[row * c + k])
        .collect())
}

/// Evaluates `rows` modified copies of the input in stacked chunks and hands each chunk's
/// gradients to `sink(row, gradient)`. `fill(row, out)` appends row `row` of the stack to
/// `out` and returns its target class. Rows are produced in order, so a stateful `fill` (a
/// noise generator) yields the same values whatever the chunk size.
fn gradients_in_chunks(
    op: &'static str,
    model: &dyn Module,
    x: &Tensor,
    batch: Batch,
    rows: usize,
    mut fill: impl FnMut(usize, &mut Vec<f32>) -> usize,
    mut sink: impl FnMut(usize, &[f32]),
) -> Result<()> {
    let chunk = batch.chunk_rows();
    let mut start = 0;
    while start < rows {
        let len = chunk.min(rows - start);
        let mut data = Vec::with_capacity(len * batch.per);
        let t: Vec<usize> = (start..start + len)
            .map(|row| fill(row, &mut data))
            .collect();
        let stacked = Tensor::from_vec(data, &stacked_shape(x, len))?;
        let g = target_gradients(op, model, stacked, &t)?;
        for (k, row) in (start..start + len).enumerate() {
            sink(row, &g.data()[k * batch.per..(k + 1) * batch.per]);
        }
        start += len;
    }
    Ok(())
}
