//! A generic training loop: one epoch over caller-supplied batches, evaluation in batches,
//! and a `fit` driver with an optional cosine schedule and per-epoch report lines.
//!
//! The data pipeline (augmentation, shuffling, batching) stays with the caller: these
//! helpers take batches as `(inputs, targets)` pairs. Kernels are already parallel, so the
//! batches themselves run one after another.

use crate::loss::{accuracy, cross_entropy, soft_cross_entropy};
use crate::module::{Mode, Module};
use crate::optim::{cosine_lr, Gradients, Optimizer};
use crate::progress::Progress;
use relprop_core::kernels::split::map_items;
use relprop_core::{Error, NodeId, Result, Tape, Tensor};
use std::fmt;
use std::io::Write;
use std::time::Instant;

/// The labels of one batch (what training fits; explanations choose their classes with `relprop_explain::Targets`).
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    /// One class index per sample (hard labels).
    Classes(Vec<usize>),
    /// One probability distribution per sample, `[n, classes]` (soft labels).
    Soft(Tensor),
}

impl Labels {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Labels::Classes(c) => c.len(),
            Labels::Soft(t) => t.shape().first().copied().unwrap_or(0),
        }
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class of each sample (the most probable one for soft targets).
    pub fn classes(&self) -> Result<Vec<usize>> {
        match self {
            Labels::Classes(c) => Ok(c.clone()),
            Labels::Soft(t) => t.argmax(1),
        }
    }

    /// Records the matching cross-entropy of `logits` on the tape.
    pub fn loss(&self, tape: &mut Tape, logits: NodeId) -> Result<NodeId> {
        match self {
            Labels::Classes(c) => cross_entropy(tape, logits, c),
            Labels::Soft(t) => soft_cross_entropy(tape, logits, t),
        }
    }
}

/// Settings of [`fit`]; also a convenient bundle for callers that write their own loop.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Samples per batch (used by the caller's batching).
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f32,
    /// Seed for shuffling and augmentation (used by the caller's pipeline).
    pub seed: u64,
    /// Anneal the learning rate from `lr` towards 0 over the epochs with [`cosine_lr`].
    pub cosine: bool,
    /// No progress bars and no per-epoch lines.
    pub quiet: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            seed: 0,
            cosine: false,
            quiet: false,
        }
    }
}

impl TrainConfig {
    /// The learning rate for `epoch` (0-based): constant, or cosine-annealed.
    pub fn lr_at(&self, epoch: usize) -> f32 {
        if self.cosine {
            cosine_lr(self.lr, epoch, self.epochs)
        } else {
            self.lr
        }
    }
}

/// What one epoch of training observed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// Mean training loss per sample.
    pub loss: f32,
    /// Training accuracy, measured on the training-mode forward passes.
    pub accuracy: f32,
    /// Wall-clock time of the epoch.
    pub seconds: f32,
    /// Samples seen.
    pub samples: usize,
}

impl fmt::Display for EpochStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss {:.4}  acc {:.2}%  {} samples  {:.1}s",
            self.loss,
            100.0 * self.accuracy,
            self.samples,
            self.seconds
        )
    }
}

/// One pass over `batches`: for each, a training-mode forward on a fresh tape, the
/// cross-entropy for its [`Labels`], the gradients, BatchNorm running statistics, and
/// one optimizer step. Fails on an empty epoch, or on a non-finite loss (with the batch
/// index, so a diverging run stops where it diverged).
pub fn train_epoch(
    model: &mut dyn Module,
    opt: &mut dyn Optimizer,
    batches: impl IntoIterator<Item = (Tensor, Labels)>,
    quiet: bool,
) -> Result<EpochStats> {
    let start = Instant::now();
    let batches = batches.into_iter();
    let (lo, hi) = batches.size_hint();
    let pb = Progress::new(hi.filter(|&h| h == lo), quiet, "");
    let (mut loss_sum, mut hits, mut samples) = (0.0f64, 0.0f64, 0usize);
    for (step, (inputs, targets)) in batches.enumerate() {
        let n = targets.len();
        let mut tape = Tape::new();
        // The input needs no gradient: a constant spares the first layer's input VJP.
        let x = tape.constant(inputs);
        let logits = model.forward(&mut tape, x, Mode::Train)?;
        let loss_id = targets.loss(&mut tape, logits)?;
        let loss = tape.value(loss_id)?.item()?;
        if !loss.is_finite() {
            pb.abandon();
            return Err(Error::invalid(
                "train_epoch",
                format!("the loss became {loss} at batch {step}; try a lower learning rate"),
            ));
        }
        let signals = tape.grad(loss_id)?;
        let grads = Gradients::from_tape(&tape, &signals)?;
        model.update_running_stats(&tape)?;
        opt.step(model.params_mut(), &grads)?;

        let acc = accuracy(tape.value(logits)?, &targets.classes()?);
        loss_sum += loss as f64 * n as f64;
        hits += acc as f64 * n as f64;
        samples += n;
        pb.inc();
        pb.set_message(|| {
            format!(
                "loss {:.4} acc {:.2}%",
                loss_sum / samples.max(1) as f64,
                100.0 * hits / samples.max(1) as f64
            )
        });
    }
    pb.finish();
    if samples == 0 {
        return Err(Error::invalid("train_epoch", "the epoch had no samples"));
    }
    Ok(EpochStats {
        loss: (loss_sum / samples as f64) as f32,
        accuracy: (hits / samples as f64) as f32,
        seconds: start.elapsed().as_secs_f32(),
        samples,
    })
}

/// Runs `cfg.epochs` epochs of [`train_epoch`], asking `batches(epoch)` for each epoch's
/// batches (shuffle there, e.g. with a seed derived from `cfg.seed` and the epoch). Sets
/// the learning rate per epoch with [`TrainConfig::lr_at`] and, unless `cfg.quiet`, prints
/// one line per epoch with its loss and accuracy.
pub fn fit<F, I>(
    model: &mut dyn Module,
    opt: &mut dyn Optimizer,
    cfg: &TrainConfig,
    mut batches: F,
) -> Result<Vec<EpochStats>>
where
    F: FnMut(usize) -> I,
    I: IntoIterator<Item = (Tensor, Labels)>,
{
    let mut history = Vec::with_capacity(cfg.epochs);
    for epoch in 0..cfg.epochs {
        opt.set_lr(cfg.lr_at(epoch));
        let stats = train_epoch(model, opt, batches(epoch), cfg.quiet)?;
        if !cfg.quiet {
            // Progress lines are best effort: a closed stdout must not stop the training.
            let _ = writeln!(
                std::io::stdout(),
                "epoch {}/{}  lr {:.2e}  {stats}",
                epoch + 1,
                cfg.epochs,
                opt.lr()
            );
        }
        history.push(stats);
    }
    Ok(history)
}

/// Rows `start..end` of a tensor along its first dimension.
pub fn slice_rows(t: &Tensor, start: usize, end: usize) -> Result<Tensor> {
    let n = t.shape().first().copied().unwrap_or(0);
    if start > end || end > n {
        return Err(Error::invalid(
            "slice_rows",
            format!("rows {start}..{end} of a tensor with {n}"),
        ));
    }
    let row: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = end - start;
    Tensor::from_vec(t.data()[start * row..end * row].to_vec(), &shape)
}

/// The rows at `indices` (along the first dimension), in that order: a shuffled batch.
pub fn gather_rows(t: &Tensor, indices: &[usize]) -> Result<Tensor> {
    let n = t.shape().first().copied().unwrap_or(0);
    let row: usize = t.shape()[1..].iter().product();
    let mut data = Vec::with_capacity(indices.len() * row);
    for &i in indices {
        if i >= n {
            return Err(Error::invalid(
                "gather_rows",
                format!("row {i} of a tensor with {n}"),
            ));
        }
        data.extend_from_slice(&t.data()[i * row..(i + 1) * row]);
    }
    let mut shape = t.shape().to_vec();
    shape[0] = indices.len();
    Tensor::from_vec(data, &shape)
}

/// Evaluation-mode outputs for every row of `inputs`, computed `batch_size` rows at a time
/// on inference tapes, concatenated along the first dimension. Errors name the first layer
/// whose activations are not finite rather than return meaningless outputs.
///
/// With `batch_size` 1 the samples run side by side, one per thread, each with its kernels
/// on its own thread: for large samples (a photo) that beats splitting every kernel of one
/// sample across the threads, and the outputs are the same.
pub fn predict(model: &dyn Module, inputs: &Tensor, batch_size: usize) -> Result<Tensor> {
    if inputs.rank() == 0 || batch_size == 0 {
        return Err(Error::invalid(
            "predict",
            "needs inputs with a batch dimension and a batch size of at least 1",
        ));
    }
    let n = inputs.shape()[0];
    let chunk = |start: usize| -> Result<Tensor> {
        let batch = slice_rows(inputs, start, (start + batch_size).min(n))?;
        let mut tape = Tape::for_inference();
        let x = tape.constant(batch);
        let y = model.forward(&mut tape, x, Mode::Eval)?;
        tape.check_finite("predict", y)?;
        Ok(tape.value(y)?.clone())
    };
    let starts: Vec<usize> = (0..n).step_by(batch_size).collect();
    let parts = map_items(&starts, batch_size == 1, chunk)?;
    let mut shape = vec![n];
    shape.extend(
        parts
            .first()
            .map(|t| t.shape()[1..].to_vec())
            .unwrap_or_default(),
    );
    let data: Vec<f32> = parts
        .iter()
        .flat_map(|t| t.data().iter().copied())
        .collect();
    Tensor::from_vec(data, &shape)
}

/// Evaluation-mode accuracy over `inputs` `[n, ...]` against class `targets`, in batches.
pub fn evaluate(
    model: &dyn Module,
    inputs: &Tensor,
    targets: &[usize],
    batch_size: usize,
) -> Result<f32> {
    if inputs.shape().first() != Some(&targets.len()) {
        return Err(Error::invalid(
            "evaluate",
            format!(
                "{} targets for inputs of shape {:?}",
                targets.len(),
                inputs.shape()
            ),
        ));
    }
    if targets.is_empty() {
        return Err(Error::invalid("evaluate", "there is nothing to evaluate"));
    }
    let logits = predict(model, inputs, batch_size)?;
    Ok(accuracy(&logits, targets))
}
